"""Section `rotation`: alternating rotations under clients that keep connecting."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, module_missing
from bench.report import Report

ROTATIONS = 10


QUICK_ROTATIONS = 2


ROTATION_CLIENTS = 8


ROTATION_IDENTITY = "naap_app"


@contextlib.contextmanager
def _moto_secretsmanager() -> Iterator[Any]:
    """Secrets Manager under moto, in process, with fake credentials; the
    caller's AWS settings (and the rotation's NAAPDB_ ones) are put back
    afterwards."""
    from moto import mock_aws

    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "NAAPDB_"))}
    for variable in [k for k in saved if k.startswith("AWS_")]:
        del os.environ[variable]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        with mock_aws():
            import boto3

            yield boto3.client("secretsmanager", region_name="us-east-1")
    finally:
        for variable in [k for k in os.environ if k.startswith(("AWS_", "NAAPDB_"))]:
            del os.environ[variable]
        os.environ.update(saved)


def _rotation_secret(server: Any, client: Any, plan: Any) -> str:
    """What the prod stack leaves for one identity: its logins with
    passwords, the master secret, and the identity's secret on `_a`."""
    import secrets

    from psycopg import sql

    from naapdb.rotate import DbSecret
    from naapdb.sql import plan_to_sql

    server.execute(plan_to_sql(plan))
    logins = plan.logins_of(ROTATION_IDENTITY)
    password = secrets.token_hex(20)
    with server.connect() as connection:
        for login in logins:
            connection.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(login), sql.Literal(password)
                )
            )
    master = client.create_secret(
        Name="rds!db-bench",
        SecretString=json.dumps({"username": "postgres", "password": server.password}),
    )
    # What Pulumi tells the Lambda: the only endpoint the rotation trusts
    # (RDS's master secret holds no host; naapdb/trust.py).
    os.environ["NAAPDB_DATABASE_ENDPOINT"] = f"{server.host}:{server.port}/{plan.database}"
    document = DbSecret(
        host=server.host,
        port=server.port,
        dbname=plan.database,
        username=logins[0],
        password=password,
        masterarn=master["ARN"],
        sslmode="verify-full",
    )
    created = client.create_secret(
        Name=f"naap-db/bench/{ROTATION_IDENTITY}", SecretString=document.to_json()
    )
    return str(created["ARN"])


def bench_rotation(report: Report) -> None:
    """Alternating rotations of `naap_app`'s secret (moto, a real server)
    while client threads connect continuously with its current version:
    `tests/rotation_load.py`, the load test of the credentials issue."""
    missing = module_missing("naapdb.rotate") or module_missing("tests.rotation_load")
    if missing:
        report.problems.append(("rotation", f"not measured: {missing}"))
        return
    from naapdb.plan import Rotation, build_plan
    from naapdb.stackfiles import load_stack_settings
    from tests.rotation_load import run_rotation_load
    from tests.tlsca import make_ca
    from tests.tlspostgres import BUILDS
    from tests.tlsserver import tls_server

    # The rotation connects verify-full only: a TLS server whose test CA is
    # trusted out loud, as the Lambda trusts its bundled RDS CA; PostgreSQL
    # 16 (the product's) built with OpenSSL (tests/tlspostgres.py).
    build = BUILDS["16"]
    if not build.installed():
        report.problems.append(
            ("rotation", "not measured: run `venv/bin/python -m tests.tlspostgres 16` (needs npm)")
        )
        return
    plan = build_plan(load_stack_settings("prod", ROOT).catalog, Rotation.ALTERNATING)
    rotations = QUICK_ROTATIONS if report.quick else ROTATIONS
    per_rotation: list[float] = []
    connections: list[int] = []
    failures: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        ca = make_ca(Path(scratch) / "ca", ("localhost",))
        os.environ["NAAPDB_SSLROOTCERT"] = str(ca.ca_cert)
        os.environ["NAAPDB_TRUST_CA_BUNDLE"] = "1"
        for _ in range(report.repeat):
            with tls_server(build, ca) as server, _moto_secretsmanager() as client:
                secret_id = _rotation_secret(server, client, plan)
                load = run_rotation_load(
                    client, secret_id, clients=ROTATION_CLIENTS, rotations=rotations, pause=0.2
                )
            if load.timed_out or load.rotations != rotations:
                raise RuntimeError(f"only {load.rotations} of {rotations} rotations ran")
            per_rotation += load.rotation_seconds
            connections.append(load.connections)
            failures.append(load.failures)
            for error in load.errors:
                print(f"rotation: a client failed: {error}", file=sys.stderr)
    note = f"{ROTATION_CLIENTS} clients, {rotations} rotations a run"
    report.add("rotation", "time per rotation", "s", None, per_rotation, note=note)
    report.add("rotation", "connections made", "count", None, connections, note=note)
    report.add("rotation", "failed connections", "count", None, failures, note=note)

"""No generated password reaches the PostgreSQL server log.

A real server logs every statement (`log_statement = all`). The test applies
the whole access layer the way `pulumi up` does: the plan's SQL, then each
postgresql Role's `password` input exactly as the program registers it
(under mocks, with the real stack config), sent the way pulumi-postgresql
sends it (`ALTER ROLE ... PASSWORD '<input>'`); the dev container's admin
password sync through psql with the environment the program gives it; then
one rotation of every identity (Secrets Manager under moto). Every
plaintext password (each RandomPassword's result, every secret version's
password) must log in, and none may appear in the log."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from psycopg import sql

from components.server import SYNC_PASSWORD_ENV, SYNC_PASSWORD_SQL
from naapdb import pushkey, scram
from naapdb.rotate import DbSecret, rotate_now
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Run
from tests.naapdb.test_rotate import TLS_HOST, rotation_ca
from tests.pgserver import PgServer
from tests.tlsca import CaFiles
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = [pytest.mark.db, pytest.mark.aws]
__all__ = ["rotation_ca"]  # a fixture this module uses from test_rotate

ROLE = "postgresql:index/role:Role"
PASSWORD = "random:index/randomPassword:RandomPassword"
COMMAND = "command:local:Command"


@pytest.fixture
def logging_pg(fresh_pg: PgServer) -> PgServer:
    """A server that logs every statement, connection and disconnection."""
    return log_everything(fresh_pg)


@pytest.fixture
def logging_tls_pg(rotation_ca: tuple[TlsBuild, CaFiles]) -> Iterator[PgServer]:
    """The same on a TLS server the rotation trusts (it connects verify-full only)."""
    with tls_server(*rotation_ca) as server:
        yield log_everything(server)


def log_everything(fresh_pg: PgServer) -> PgServer:
    for statement in (
        "ALTER SYSTEM SET log_statement = 'all'",
        "ALTER SYSTEM SET log_connections = on",
        "ALTER SYSTEM SET log_disconnections = on",
        "SELECT pg_reload_conf()",
    ):
        fresh_pg.execute(statement, dbname="postgres")
    with fresh_pg.connect() as connection:
        row = connection.execute("SHOW log_statement").fetchone()
    assert row == ("all",)
    return fresh_pg


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def server_log(pg: PgServer) -> str:
    return (pg.data_dir / "server.log").read_text(errors="replace")


def generated_passwords(run: Run) -> dict[str, str]:
    """RandomPassword name -> its result (the plaintext the stack keeps secret)."""
    return {r.name: str(r.state["result"]) for r in run.of_type(PASSWORD)}


def apply_roles_like_the_provider(pg: PgServer, run: Run) -> dict[str, str]:
    """Role name -> the `password` input the program gave it, each sent as
    pulumi-postgresql sends it: in plain SQL."""
    sent = {}
    with pg.connect() as connection:
        for role in run.of_type(ROLE):
            password = role.inputs.get("password")
            if password:
                connection.execute(
                    sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                        sql.Identifier(role.inputs["name"]), sql.Literal(password)
                    )
                )
                sent[role.inputs["name"]] = password
    return sent


def logs_in(pg: PgServer, user: str, password: str) -> bool:
    try:
        with psycopg.connect(
            pg.conninfo(user=user, password=password, require_auth="scram-sha-256")
        ) as connection:
            return connection.execute("SELECT current_user::text").fetchone() == (user,)
    except psycopg.OperationalError:
        return False


def test_the_grep_finds_a_password_sent_in_clear(logging_pg: PgServer) -> None:
    """The control: what pulumi-postgresql did before, a plaintext PASSWORD,
    does land in this log, so the absence below means something."""
    canary = uuid.uuid4().hex
    logging_pg.execute(f"CREATE ROLE log_canary LOGIN PASSWORD '{canary}'")
    assert canary in server_log(logging_pg)


def test_no_generated_password_reaches_the_server_log_dev(logging_pg: PgServer, aws: Any) -> None:
    no_password_reaches_the_log(logging_pg, aws, "dev")


def test_no_generated_password_reaches_the_server_log_prod(
    logging_tls_pg: PgServer, aws: Any
) -> None:
    """prod's rotation connects verify-full only: a TLS server for it."""
    no_password_reaches_the_log(logging_tls_pg, aws, "prod")


def no_password_reaches_the_log(logging_pg: PgServer, aws: Any, stack: str) -> None:
    run = harness.run_program(stack)
    plan = load_stack_settings(stack, ROOT).plan
    logging_pg.execute(plan_to_sql(plan))
    sent = apply_roles_like_the_provider(logging_pg, run)
    plaintexts = generated_passwords(run)
    # Every login the program gives a password gets a verifier of it.
    assert sent and all(scram.is_verifier(value) for value in sent.values())
    by_role = {
        role.inputs["name"]: plaintexts[name]
        for role in run.of_type(ROLE)
        for name in plaintexts
        if role.inputs.get("password") and name.endswith(f"-{role.inputs['name']}")
    }
    # A schema's push login: its password derives from the push key.
    (key,) = [value for name, value in plaintexts.items() if name.endswith("-push-key")]
    for role in plan.roles:
        if role.purpose == "schema-migrator":
            by_role[role.name] = plaintexts[role.name] = pushkey.login_password(key, role.name)
    assert set(by_role) == set(sent)
    for role_name, password in by_role.items():
        assert logs_in(logging_pg, role_name, password), role_name
    if stack == "dev":
        sync_admin_password(logging_pg, run)
    else:
        plaintexts.update(rotate_every_identity(logging_pg, aws, plan.identities, by_role))
    log = server_log(logging_pg)
    assert "SCRAM-SHA-256$" in log  # the statements were logged, verifiers only
    leaked = sorted(name for name, password in plaintexts.items() if password in log)
    assert leaked == []


def sync_admin_password(pg: PgServer, run: Run) -> None:
    """The container's password sync (psql, the SQL and environment the
    program registers) run against the test server as a stand-in admin, which
    then logs in with the generated admin password."""
    sync = run.one(COMMAND, "admin-password-sync")
    assert sync.inputs["stdin"] == SYNC_PASSWORD_SQL
    environment = sync.inputs["environment"]
    assert scram.is_verifier(environment[SYNC_PASSWORD_ENV])
    pg.execute("CREATE ROLE sync_admin LOGIN SUPERUSER")
    pg.set_passwords({"sync_admin": "stand-in-admin-password"})
    subprocess.run(
        [
            str(pg.bin_dir / "psql"),
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            pg.conninfo(user="sync_admin", password="stand-in-admin-password"),
        ],
        input=SYNC_PASSWORD_SQL,
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, SYNC_PASSWORD_ENV: environment[SYNC_PASSWORD_ENV]},
    )
    admin_password = next(
        str(r.state["result"]) for r in run.of_type(PASSWORD) if "admin-password" in r.name
    )
    assert logs_in(pg, "sync_admin", admin_password)


def rotate_every_identity(
    pg: PgServer, client: Any, identities: tuple[str, ...], passwords: dict[str, str]
) -> dict[str, str]:
    """One rotation of each identity; returns each new plaintext password."""
    master = client.create_secret(
        Name="rds!db-log-test",
        SecretString=json.dumps(
            {"username": "postgres", "password": pg.password, "host": TLS_HOST, "port": pg.port}
        ),
    )
    rotated = {}
    for identity in identities:
        document = DbSecret(
            host=TLS_HOST,
            port=pg.port,
            dbname="naap",
            username=f"{identity}_a",
            password=passwords[f"{identity}_a"],
            masterarn=master["ARN"],
            sslmode="verify-full",
        )
        secret_id = client.create_secret(
            Name=f"naap-db/test/{identity}", SecretString=document.to_json()
        )["ARN"]
        rotate_now(client, secret_id)
        value = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
        current = DbSecret.parse(value["SecretString"], "rotated")
        assert logs_in(pg, current.username, current.password)
        rotated[f"rotated-{identity}"] = current.password
    return rotated

"""Both alternating logins keep working through the pooler across a
rotation: what RDS Proxy reads (`naapdb.proxy_credentials`), tested with
Secrets Manager under moto, a real PostgreSQL serving TLS (each major the
suite runs) with the alternating plan applied, and Debian's PgBouncer
standing in for the proxy.

RDS Proxy authenticates each database user with the AWSCURRENT version of
one secret. The stand-in does the same: its auth file is rendered from the
proxy's login secrets (`naap-db/<stack>/proxy/<login>`) and re-read after
each rotation, as the proxy re-reads them. The rotation is the real one
(`naapdb.rotate`, the Lambda's code), with the prefix the stack gives the
Lambda (`NAAPDB_PROXY_SECRET_PREFIX`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from naapdb import names, pgbouncer, proxy_credentials
from naapdb.plan import AccessPlan, Rotation, build_plan
from naapdb.pooler import Pool, pools
from naapdb.rotate import DbSecret, rotate_now, run_step
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import load_stack_settings
from tests.conftest import _OUR_PORTS
from tests.harness import ROOT
from tests.naapdb.test_rotate import TLS_HOST, rotation_ca
from tests.pgbouncer import REQUIRE_VARIABLE, RunningPgBouncer, missing_reason, running_pgbouncer
from tests.pgserver import PgServer
from tests.tlsca import CaFiles
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = [pytest.mark.db, pytest.mark.aws]

__all__ = ["rotation_ca"]  # a fixture this module uses from test_rotate

STACK = "test"
PREFIX = proxy_credentials.secret_prefix(STACK)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv(proxy_credentials.PROXY_SECRETS_VARIABLE, PREFIX)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


class ProxiedDeployment:
    """The alternating plan on a real server, the identity secrets, and the
    proxy's login secrets, as `pulumi up` leaves them with `pooler: rds`."""

    def __init__(self, server: PgServer, client: Any) -> None:
        self.server, self.client = server, client
        self.plan: AccessPlan = build_plan(
            load_stack_settings("prod", ROOT).catalog, Rotation.ALTERNATING
        )
        server.execute(plan_to_sql(self.plan))
        self.first = {role.name: secrets.token_hex(20) for role in self.plan.first_logins}
        server.set_verifiers(self.first)
        master = client.create_secret(
            Name="rds!db-test",
            SecretString=json.dumps(
                {
                    "username": "postgres",
                    "password": server.password,
                    "host": TLS_HOST,
                    "port": server.port,
                    "sslmode": "verify-full",
                }
            ),
        )
        self.identity_secrets = {}
        for identity in self.plan.identities:
            first = self.plan.logins_of(identity)[0]
            document = DbSecret(
                host=TLS_HOST,
                port=server.port,
                dbname=names.DATABASE,
                username=first,
                password=self.first[first],
                masterarn=master["ARN"],
                sslmode="verify-full",  # the rotation trusts nothing less
            )
            created = client.create_secret(
                Name=f"naap-db/{STACK}/{identity}", SecretString=document.to_json()
            )
            self.identity_secrets[identity] = created["ARN"]
        # components/proxy.py: one per pooled login; `_b` has no password yet.
        self.pools: tuple[Pool, ...] = pools(self.plan)
        for pool in self.pools:
            client.create_secret(
                Name=PREFIX + pool.login,
                SecretString=proxy_credentials.document(pool.login, self.first.get(pool.login, "")),
            )

    def login_secret(self, login: str) -> dict[str, str]:
        value = self.client.get_secret_value(SecretId=PREFIX + login)["SecretString"]
        return dict(json.loads(value))

    def proxy_auth_file(self) -> str:
        """What the proxy can authenticate: each login secret's current password."""
        known = {pool.login: self.login_secret(pool.login)["password"] for pool in self.pools}
        return pgbouncer.auth_file({k: v for k, v in known.items() if v}, self.pools)

    def current(self, identity: str, stage: str = "AWSCURRENT") -> DbSecret:
        value = self.client.get_secret_value(
            SecretId=self.identity_secrets[identity], VersionStage=stage
        )
        return DbSecret.parse(value["SecretString"], stage)


def connects(bouncer: RunningPgBouncer, login: str, password: str) -> bool:
    try:
        with psycopg.connect(bouncer.conninfo(login, password)) as connection:
            row = connection.execute("SELECT current_user::text").fetchone()
        return row == (login,)
    except psycopg.OperationalError:
        return False


@pytest.fixture
def proxied(
    aws: Any, rotation_ca: tuple[TlsBuild, CaFiles]
) -> Iterator[tuple[ProxiedDeployment, RunningPgBouncer]]:
    reason = missing_reason()
    if reason is not None:
        import os

        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail(f"{REQUIRE_VARIABLE} is set but {reason}")
        pytest.skip(reason)
    # The rotation reaches the server over verify-full only: a TLS server
    # whose certificate the test CA signed (tests/naapdb/test_rotate.py).
    with tls_server(*rotation_ca) as server:
        deployment = ProxiedDeployment(server, aws)
        with running_pgbouncer(server, deployment.pools, {}, on_port=_OUR_PORTS.add) as bouncer:
            bouncer.write_auth_file(deployment.proxy_auth_file())
            bouncer.reload()
            yield deployment, bouncer


def test_both_logins_keep_connecting_through_the_proxy_across_rotations(proxied: Any) -> None:
    deployment, bouncer = proxied
    identity = names.APP
    first, second = names.alternate_logins(identity)
    a_password = deployment.first[first]
    assert connects(bouncer, first, a_password)
    assert not connects(bouncer, second, "")  # `_b` has no password before its first rotation

    rotate_now(deployment.client, deployment.identity_secrets[identity])
    # The rotation wrote `_b`'s new password into its login secret, and left `_a`'s.
    current = deployment.current(identity)
    assert current.username == second
    assert deployment.login_secret(second) == {"username": second, "password": current.password}
    assert deployment.login_secret(first) == {"username": first, "password": a_password}
    bouncer.write_auth_file(deployment.proxy_auth_file())
    bouncer.reload()
    # Clients that read the secret before the rotation (AWSPREVIOUS) and after it.
    assert connects(bouncer, first, a_password)
    assert connects(bouncer, second, current.password)

    rotate_now(deployment.client, deployment.identity_secrets[identity])
    newest = deployment.current(identity)
    assert newest.username == first and newest.password != a_password
    bouncer.write_auth_file(deployment.proxy_auth_file())
    bouncer.reload()
    assert connects(bouncer, first, newest.password)
    assert connects(bouncer, second, current.password)  # now AWSPREVIOUS, still good
    # Two rotations on, the oldest password is gone, through the proxy as directly.
    assert not connects(bouncer, first, a_password)


def test_a_proxy_reading_only_the_identity_secret_would_drop_the_previous_login(
    proxied: Any,
) -> None:
    """Why the proxy reads login secrets: the identity's secret names one
    login at a time, so after a rotation the previous login (still valid on
    the server) would be unknown to the proxy."""
    deployment, bouncer = proxied
    identity = names.APP
    first = names.alternate_logins(identity)[0]
    rotate_now(deployment.client, deployment.identity_secrets[identity])
    current = deployment.current(identity)
    only_current = pgbouncer.auth_file({current.username: current.password}, deployment.pools)
    bouncer.write_auth_file(only_current)
    bouncer.reload()
    assert not connects(bouncer, first, deployment.first[first])
    with psycopg.connect(
        deployment.server.conninfo(user=first, password=deployment.first[first])
    ) as direct:
        assert direct.execute("SELECT current_user::text").fetchone() == (first,)


def test_set_secret_writes_the_login_secret_once_per_rotation(proxied: Any) -> None:
    """setSecret may run twice for one rotation (Secrets Manager retries):
    the login secret gets one version for it."""
    deployment, _ = proxied
    secret_id = deployment.identity_secrets[names.READONLY]
    second = names.alternate_logins(names.READONLY)[1]
    token = str(uuid.uuid4())
    run_step(deployment.client, secret_id, token, "createSecret")
    run_step(deployment.client, secret_id, token, "setSecret")
    run_step(deployment.client, secret_id, token, "setSecret")
    versions = deployment.client.list_secret_version_ids(SecretId=PREFIX + second)["Versions"]
    assert token in {version["VersionId"] for version in versions}
    assert len(versions) == 2  # the first (no password) and this rotation's
    pending = deployment.client.get_secret_value(
        SecretId=secret_id, VersionId=token, VersionStage="AWSPENDING"
    )
    password = json.loads(pending["SecretString"])["password"]
    assert deployment.login_secret(second)["password"] == password


def test_without_a_proxy_the_rotation_touches_no_login_secret(
    proxied: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment, _ = proxied
    monkeypatch.delenv(proxy_credentials.PROXY_SECRETS_VARIABLE)
    second = names.alternate_logins(names.APP)[1]
    rotate_now(deployment.client, deployment.identity_secrets[names.APP])
    assert deployment.login_secret(second)["password"] == ""

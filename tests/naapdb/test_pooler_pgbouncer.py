"""PgBouncer with the configuration naap-db renders (`naapdb.pgbouncer`), in
front of the suite's PostgreSQL 16: Debian's `pgbouncer` package
(tests/pgbouncer.py).

The access plan is applied as `pulumi up` applies it, and every login's
password goes to the server as the SCRAM verifier naap-db computes
(`naapdb.scram`): PgBouncer's auth file holds the same verifiers, so it
logs clients in to the server with their own proof (SCRAM pass-through),
and a password is nowhere in its files.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from naapdb import names
from naapdb.pooler import direct_logins, pools
from naapdb.push import discover, push
from naapdb.settings import StackSettings, parse_settings
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import read_raw_config
from tests.conftest import _OUR_PORTS
from tests.harness import ROOT
from tests.limits_load import TOO_MANY
from tests.pgbouncer import REQUIRE_VARIABLE, RunningPgBouncer, missing_reason, running_pgbouncer
from tests.pgserver import ClusterFactory, PgServer

pytestmark = pytest.mark.db

NOISY, QUIET = "wallet", "community"
NOISY_POOL = 3


def _skip_without_pgbouncer() -> None:
    import os

    reason = missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail(f"{REQUIRE_VARIABLE} is set but {reason}")
        pytest.skip(reason)


def dev_with_pooler() -> StackSettings:
    """The committed dev stack with `pooler: {kind: container}` and a small
    pool for the noisy plugin (its catalogue entry's `limits:`)."""
    raw: dict[str, Any] = read_raw_config(ROOT, "dev")
    raw["pooler"] = {"kind": "container"}
    raw["plugins"] = [
        {**entry, "limits": {"connections": NOISY_POOL}} if entry["plugin"] == NOISY else entry
        for entry in raw["plugins"]
    ]
    return parse_settings("dev", raw)


def apply_with_verifiers(server: PgServer, settings: StackSettings) -> dict[str, str]:
    """The plan's SQL, then each login's password as naap-db sends it: the
    SCRAM verifier, never the password."""
    server.execute(plan_to_sql(settings.plan))
    passwords = {role.name: secrets.token_hex(20) for role in settings.plan.login_roles}
    server.set_verifiers(passwords)
    return passwords


@pytest.fixture(scope="module")
def pg16(pg_factories: Any) -> ClusterFactory:
    return pg_factories("16")


@pytest.fixture
def pooled(
    pg16: ClusterFactory,
) -> Iterator[tuple[StackSettings, PgServer, RunningPgBouncer, dict[str, str]]]:
    _skip_without_pgbouncer()
    settings = dev_with_pooler()
    server = pg16.start()
    passwords = apply_with_verifiers(server, settings)
    with running_pgbouncer(
        server, pools(settings.plan), passwords, on_port=_OUR_PORTS.add
    ) as bouncer:
        yield settings, server, bouncer, passwords
    server.stop()


def test_every_pooled_login_connects_through_pgbouncer_with_its_password(pooled: Any) -> None:
    settings, server, bouncer, passwords = pooled
    for pool in pools(settings.plan):
        with psycopg.connect(bouncer.conninfo(pool.login, passwords[pool.login])) as connection:
            row = connection.execute("SELECT current_user::text, inet_server_port()").fetchone()
        # Logged in as itself, on the server behind the pooler.
        assert row == (pool.login, server.port)
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(bouncer.conninfo(names.APP, "not-the-password"))


def test_the_auth_file_holds_the_servers_verifiers_and_no_password(pooled: Any) -> None:
    settings, server, bouncer, passwords = pooled
    text = bouncer.auth_file.read_text()
    assert not any(password in text for password in passwords.values())
    with server.connect() as connection:
        stored = dict(
            connection.execute("SELECT rolname::text, rolpassword FROM pg_authid").fetchall()
        )
    lines = dict(line.replace('"', "").split(" ", 1) for line in text.splitlines())
    assert set(lines) == {pool.login for pool in pools(settings.plan)}
    assert all(lines[login] == stored[login] for login in lines)


def test_the_push_and_the_admin_cannot_go_through_the_pooler(pooled: Any) -> None:
    """Only the pooled logins are in the auth file: the migrator (the push)
    and the admin are refused by PgBouncer with their right passwords, and
    the push runs direct."""
    settings, server, bouncer, passwords = pooled
    push_logins = [s.migrator for s in settings.plan.schemas if s.migrator]
    assert [role.name for role in direct_logins(settings.plan)] == [names.MIGRATOR, *push_logins]
    for user, password in (
        (names.MIGRATOR, passwords[names.MIGRATOR]),
        ("postgres", server.password),
    ):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(bouncer.conninfo(user, password))
    # No other database than naap is reachable through it either.
    with pytest.raises(psycopg.OperationalError, match="no such database"):
        psycopg.connect(bouncer.conninfo(names.APP, passwords[names.APP], dbname="postgres"))
    direct = server.conninfo(user=names.MIGRATOR, password=passwords[names.MIGRATOR])
    with psycopg.connect(direct, autocommit=True) as connection:
        found = discover(ROOT / "migrations", settings.catalog)
        result = push(
            connection,
            found,
            settings.catalog,
            connect_schema=lambda schema: server.connect(
                user=names.schema_migrator(schema),
                password=passwords[names.schema_migrator(schema)],
            ),
        )
    assert len(result.applied) == len(found)


def test_many_clients_share_a_plugins_pool(pooled: Any) -> None:
    """Transaction pooling: four times a plugin's pool in clients, all
    connected at once, each running transactions; the server never sees
    more of that plugin's sessions than its pool."""
    settings, server, bouncer, passwords = pooled
    login = names.plugin_login(QUIET)
    size = settings.plan.role(login).limits.connections  # type: ignore[union-attr]
    clients = [
        psycopg.connect(bouncer.conninfo(login, passwords[login]), autocommit=True)
        for _ in range(size * 4)
    ]
    try:
        for _ in range(3):
            for client in clients:
                assert client.execute("SELECT 1").fetchone() == (1,)
        with server.connect() as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (login,)
            ).fetchone()
        assert row is not None and 0 < row[0] <= size
    finally:
        for client in clients:
            client.close()


def test_a_plugin_at_its_pool_waits_while_every_other_plugin_connects(pooled: Any) -> None:
    """The noisy neighbour through the pooler: the noisy plugin holds every
    server connection of its pool in open transactions; one more of its
    clients waits (PgBouncer queues it), a direct connection as it is
    refused by the server (its CONNECTION LIMIT is the pool), and every
    other pooled login keeps connecting and querying. One transaction ends,
    and the waiting client gets its turn."""
    settings, server, bouncer, passwords = pooled
    noisy = names.plugin_login(NOISY)
    held = []
    for _ in range(NOISY_POOL):
        connection = psycopg.connect(bouncer.conninfo(noisy, passwords[noisy]))
        connection.execute("SELECT 1")  # inside a transaction: the server connection stays
        held.append(connection)
    waiting_done = threading.Event()
    waiting_error: list[BaseException] = []

    def one_more() -> None:
        try:
            with psycopg.connect(bouncer.conninfo(noisy, passwords[noisy])) as extra:
                extra.execute("SELECT 1")
        except BaseException as error:  # reported below
            waiting_error.append(error)
        finally:
            waiting_done.set()

    waiter = threading.Thread(target=one_more, daemon=True)
    waiter.start()
    try:
        with server.connect() as admin:
            noisy_sessions = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (noisy,)
            ).fetchone()
        assert noisy_sessions == (NOISY_POOL,)
        with pytest.raises(psycopg.OperationalError, match=TOO_MANY):
            psycopg.connect(server.conninfo(user=noisy, password=passwords[noisy]))
        others = [pool for pool in pools(settings.plan) if pool.login != noisy]
        for _ in range(2):
            for pool in others:
                conninfo = bouncer.conninfo(pool.login, passwords[pool.login])
                with psycopg.connect(conninfo) as connection:
                    assert connection.execute("SELECT current_user::text").fetchone() == (
                        pool.login,
                    )
        # Everyone else was served while the noisy plugin's client still waits.
        assert not waiting_done.is_set()
        held[0].commit()
        assert waiting_done.wait(30), "the queued client never got a server connection"
        assert not waiting_error, waiting_error
    finally:
        for connection in held:
            connection.close()
        waiter.join(30)


def project_of_the_fixture(folder: Path) -> Path:
    """A copy of the checkout's stack files with what `dev_with_pooler` adds."""
    import yaml

    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for entry in document["config"]["naap-db:plugins"]["value"]:
        if entry["plugin"] == NOISY:
            entry["limits"] = {"connections": NOISY_POOL}
    (folder / "Pulumi.yaml").write_text(yaml.safe_dump(document))
    stack = (ROOT / "Pulumi.dev.yaml").read_text()
    (folder / "Pulumi.dev.yaml").write_text(stack + "  naap-db:pooler:\n    kind: container\n")
    return folder


def test_verify_through_the_pooler_names_the_server_behind_it(
    pooled: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """naap_readonly's pooled URL is enough for verify (one catalog query in
    one transaction), and the report names the server it read and the
    pooler it went through."""
    from naapdb.__main__ import main

    _, server, bouncer, passwords = pooled
    url = (
        f"postgresql://{names.READONLY}:{passwords[names.READONLY]}@{bouncer.host}:"
        f"{bouncer.port}/naap?sslmode=disable"
    )
    monkeypatch.setenv("DATABASE_URL", url)
    project = project_of_the_fixture(tmp_path)
    code = main(["verify", "--stack", "dev", "--project", str(project)])
    out, err = capsys.readouterr()
    assert (code, out) == (0, ""), err
    assert f"read the primary {server.host}:{server.port} (PostgreSQL 16." in err
    assert f"; through {bouncer.host}:{bouncer.port})" in err

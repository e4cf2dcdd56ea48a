"""Read replicas for real: a streaming replica made with `pg_basebackup`
from the same PostgreSQL 16 binaries as the primary (the suite's
`pgserver` wheel), in hot standby, replaying the primary's WAL.

The access plan is applied on the primary as `pulumi up` applies it, the
replica is made, and then the push creates tables on the primary: what a
replica serves is what the primary wrote after it, with the same rights.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from naapdb import names
from naapdb.__main__ import main
from naapdb.push import discover, push
from naapdb.settings import StackSettings
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import load_stack_settings
from tests.conftest import _OUR_PORTS
from tests.harness import ROOT
from tests.pgserver import ClusterFactory, PgServer

pytestmark = pytest.mark.db

READ_ONLY_TRANSACTION = "25006"
INSUFFICIENT_PRIVILEGE = "42501"
REPLAY_TIMEOUT = 30.0


class Replicated:
    """A primary with the dev plan applied and the push run, and its replica."""

    def __init__(self, factory: ClusterFactory) -> None:
        self.settings: StackSettings = load_stack_settings("dev", ROOT)
        self.primary = factory.start()
        self.primary.execute(plan_to_sql(self.settings.plan))
        self.passwords = {
            role.name: secrets.token_hex(20) for role in self.settings.plan.login_roles
        }
        self.primary.set_passwords(self.passwords)
        self.replica = factory.start_replica(self.primary)
        _OUR_PORTS.add(self.replica.port)
        # The push runs on the primary after the replica exists.
        migrator = self.primary.conninfo(
            user=names.MIGRATOR, password=self.passwords[names.MIGRATOR]
        )
        with psycopg.connect(migrator, autocommit=True) as connection:
            found = discover(ROOT / "migrations", self.settings.catalog)
            push(
                connection,
                found,
                self.settings.catalog,
                connect_schema=lambda schema: self.primary.connect(
                    user=names.schema_migrator(schema),
                    password=self.passwords[names.schema_migrator(schema)],
                ),
            )
        self.caught_up()

    def caught_up(self) -> None:
        """Wait until the replica has replayed everything the primary wrote."""
        with self.primary.connect() as connection:
            row = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + REPLAY_TIMEOUT
        with self.replica.connect() as connection:
            while time.monotonic() < deadline:
                done = connection.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done == (True,):
                    return
                time.sleep(0.1)
        raise AssertionError(f"the replica did not replay up to {target} in {REPLAY_TIMEOUT} s")

    def login(self, server: PgServer, role: str) -> psycopg.Connection[Any]:
        connection = psycopg.connect(
            server.conninfo(user=role, password=self.passwords[role]), autocommit=True
        )
        server.connections.append(connection)
        return connection


@pytest.fixture(scope="module")
def replicated(pg_factories: Any) -> Iterator[Replicated]:
    setup = Replicated(pg_factories("16"))
    yield setup
    setup.replica.stop()
    setup.primary.stop()


def test_the_replica_is_in_recovery_and_the_primary_is_not(replicated: Replicated) -> None:
    with replicated.replica.connect() as connection:
        assert connection.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    with replicated.primary.connect() as connection:
        assert connection.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)


def test_readonly_reads_on_the_replica_and_any_write_is_refused(replicated: Replicated) -> None:
    reader = replicated.login(replicated.replica, names.READONLY)
    assert reader.execute('SELECT count(*) FROM public."User"').fetchone() is not None
    with pytest.raises(psycopg.Error) as refused:
        reader.execute("""INSERT INTO public."User" (email) VALUES ('x@example.com')""")
    assert refused.value.sqlstate == READ_ONLY_TRANSACTION
    # Even the login that may write on the primary cannot write here.
    writer = replicated.login(replicated.replica, names.APP)
    with pytest.raises(psycopg.Error) as refused:
        writer.execute('DELETE FROM plugin_community."CommunityPost"')
    assert refused.value.sqlstate == READ_ONLY_TRANSACTION


def test_a_table_the_push_creates_is_readable_there_with_the_same_rights(
    replicated: Replicated,
) -> None:
    """Every table the push created on the primary, after the replica was
    made, exists on the replica, and each login's SELECT right on it is the
    same on both servers; a plugin still cannot read another's schema."""
    query = (
        "SELECT n.nspname || '.' || c.relname, r.rolname, "
        "has_table_privilege(r.oid, c.oid, 'SELECT') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN pg_roles r "
        "WHERE c.relkind = 'r' AND n.nspname = ANY(%s) AND r.rolname = ANY(%s) "
        "ORDER BY 1, 2"
    )
    schemas = [schema.name for schema in replicated.settings.plan.schemas]
    logins = [role.name for role in replicated.settings.plan.login_roles]
    with replicated.primary.connect() as primary, replicated.replica.connect() as replica:
        on_primary = primary.execute(query, (schemas, logins)).fetchall()
        on_replica = replica.execute(query, (schemas, logins)).fetchall()
    assert on_primary and on_replica == on_primary
    wallet = replicated.login(replicated.replica, names.plugin_login("wallet"))
    assert (
        wallet.execute('SELECT count(*) FROM plugin_wallet."WalletConnection"').fetchone()
        is not None
    )
    with pytest.raises(psycopg.Error) as refused:
        wallet.execute('SELECT * FROM plugin_community."CommunityPost"')
    assert refused.value.sqlstate == INSUFFICIENT_PRIVILEGE


def test_verify_exits_0_against_the_replica_and_says_which_server_it_read(
    replicated: Replicated, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replica = replicated.replica
    url = replica.url(user=names.READONLY, password=replicated.passwords[names.READONLY])
    monkeypatch.setenv("DATABASE_READ_URL", url)
    code = main(["verify", "--stack", "dev", "--replica", "--project", str(ROOT)])
    out, err = capsys.readouterr()
    assert (code, out) == (0, "")
    assert "no drift" in err
    assert f"read the replica {replica.host}:{replica.port} (PostgreSQL 16." in err
    assert "in recovery, replayed up to" in err
    assert replicated.passwords[names.READONLY] not in err


def test_verify_replica_refuses_a_read_url_that_reaches_the_primary(
    replicated: Replicated, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    primary = replicated.primary
    url = primary.url(user=names.READONLY, password=replicated.passwords[names.READONLY])
    monkeypatch.setenv("DATABASE_READ_URL", url)
    code = main(["verify", "--stack", "dev", "--replica", "--project", str(ROOT)])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("error: --replica: DATABASE_READ_URL reached the primary")
    assert err.count("\n") == 1


def test_verify_replica_without_the_variable_says_where_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_READ_URL", raising=False)
    code = main(["verify", "--stack", "dev", "--replica", "--project", str(ROOT)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "DATABASE_READ_URL" in err and "dotenv --role naap_readonly" in err

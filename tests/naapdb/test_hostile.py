"""Hostile migrations: one file in gateway's folder per way out of its
schema, each run by the real push against a deployed catalogue (the plan
applied, the sample migrations pushed, rows in every plugin's tables).

For each, the push stops naming the file, whether PostgreSQL itself denies
the statement (privilege: the file's login can become plugin_gateway_owner
and nothing else) or the push's own check refuses what an owner may do to
its own schema but a file must not (`naapdb.push.confine`); and a dump of
every role and of the whole database, objects, ACLs, default privileges,
rows and ledger, is byte for byte what it was before.

The last tests show the boundary's limit (docs/access.md): an
invoker-rights trigger that gateway's files may well create, fired by a
login with rights in another schema (`naap_app`), acts with that login's
rights there. Ownership cannot prevent it; what it can and cannot reach is
shown here.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from naapdb import names
from naapdb.__main__ import main
from naapdb.pushkey import PUSH_KEY_VARIABLE
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.deployed import PUSH_KEY, deploy
from tests.pgserver import PgServer

pytestmark = pytest.mark.db

ROOT = find_project_root()
SETTINGS = load_stack_settings("dev", ROOT)
MIGRATOR_PASSWORD = "migrator-pw-hostile-3c1a"
LOGIN_PASSWORD = "login-pw-hostile-9f2e"
HOSTILE = "0002_hostile.sql"
FILE_LABEL = f"plugin_gateway/{HOSTILE}"

SEED = """
INSERT INTO public."User" ("id", "email", "name") VALUES ('u1', 'ada@example.com', 'Ada');
INSERT INTO plugin_wallet."WalletConnection" ("id", "userId", "address", "chainId", "provider")
VALUES ('w1', 'u1', '0xabc', 1, 'metamask');
INSERT INTO plugin_wallet."WalletTransaction" ("connectionId", "txHash", "type", "amount", "token")
VALUES ('w1', '0xfeed', 'send', 42, 'ETH');
"""


def as_the_login(statement: str) -> str:
    """`statement` (quotes doubled) run as the file's login itself, its
    owner's role dropped and taken up again: what an attacker writes to get
    past the text check on RESET ROLE and the check on the role a file ends
    as."""
    return (
        f"DO $$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE '{statement}';\n"
        "  EXECUTE 'SET ROLE plugin_gateway_owner'; END $$;"
    )


def wallet_rows(server: PgServer) -> list[tuple[object, ...]]:
    with server.connect() as admin:
        return admin.execute(
            'SELECT * FROM plugin_wallet."WalletTransaction" ORDER BY "txHash"'
        ).fetchall()


@dataclass(frozen=True)
class Escape:
    """One hostile file and what must stop it: a fragment of the one-line
    error, from PostgreSQL (`denied`) or from the push's check."""

    name: str
    sql: str
    stopped_by: str


ESCAPES = [
    Escape(
        "create-in-another-schema",
        "CREATE TABLE plugin_wallet.gateway_was_here (id int);",
        "permission denied for schema plugin_wallet",
    ),
    Escape(
        "alter-another-schemas-table",
        'ALTER TABLE plugin_wallet."WalletConnection" ADD COLUMN "stolen" text;',
        "permission denied for schema plugin_wallet",
    ),
    Escape(
        "drop-another-schema",
        "DROP SCHEMA plugin_wallet CASCADE;",
        "must be owner of schema plugin_wallet",
    ),
    Escape(
        "insert-into-another-schema",
        'INSERT INTO plugin_wallet."WalletConnection" ("userId", "address", "chainId", '
        "\"provider\") VALUES ('u1', '0xbad', 1, 'evil');",
        "permission denied for schema plugin_wallet",
    ),
    Escape(
        "security-definer-reading-another-schema",
        "CREATE FUNCTION plugin_gateway.peek() RETURNS bigint SECURITY DEFINER\n"
        "LANGUAGE plpgsql AS $$ BEGIN\n"
        '  RETURN (SELECT count(*) FROM plugin_wallet."WalletConnection");\n'
        "END $$;\n"
        "GRANT EXECUTE ON FUNCTION plugin_gateway.peek() TO plugin_gateway_rw;",
        "SECURITY DEFINER function plugin_gateway.peek",
    ),
    Escape(
        "forged-ledger-row-for-another-schema",
        "INSERT INTO naap_meta.schema_migrations (schema, version, name, checksum, duration_ms)"
        " VALUES ('plugin_wallet', 2, '0002_forged.sql', 'f00d', 1);",
        "permission denied for schema naap_meta",
    ),
    Escape(
        "forged-ledger-row-as-the-login",
        as_the_login(
            "INSERT INTO naap_meta.schema_migrations (schema, version, name, checksum, "
            "duration_ms) VALUES (''plugin_wallet'', 2, ''0002_forged.sql'', ''f00d'', 1)"
        ),
        "permission denied for table schema_migrations",
    ),
    Escape(
        "forged-ledger-row-through-the-recorder",
        # The recorder records the session's own schema, never another; a
        # row forged for gateway itself makes the push's own recording fail.
        as_the_login("SELECT naap_meta.record_migration(2, ''0002_forged.sql'', ''f00d'', 1, 1)"),
        "the ledger of plugin_gateway changed while the file ran",
    ),
    Escape("reset-role", "RESET ROLE;", "RESET ROLE is not allowed in a migration"),
    Escape(
        "leave-its-owner-for-its-login",
        "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$;",
        "ends acting as plugin_gateway_migrator, not plugin_gateway_owner",
    ),
    Escape(
        "set-config-role",
        "SELECT set_config('role', 'plugin_wallet_owner', true);",
        'permission denied to set role "plugin_wallet_owner"',
    ),
    Escape(
        "set-role-in-a-do-blocks-execute",
        "DO $$ BEGIN EXECUTE 'SET ROLE plugin_wallet_owner'; END $$;",
        'permission denied to set role "plugin_wallet_owner"',
    ),
    Escape(
        "set-session-authorization-in-a-do-block",
        "DO $$ BEGIN EXECUTE 'SET SESSION AUTHORIZATION plugin_wallet_migrator'; END $$;",
        "permission denied to set session authorization",
    ),
    Escape(
        "set-session-authorization",
        "SET SESSION AUTHORIZATION plugin_wallet_migrator;",
        "SET SESSION AUTHORIZATION is not allowed in a migration",
    ),
    Escape(
        "grant-own-table-to-another-plugins-login",
        "CREATE TABLE plugin_gateway.shared (x int);\n"
        "GRANT SELECT ON plugin_gateway.shared TO naap_wallet;",
        "SELECT to naap_wallet on a relation",
    ),
    Escape(
        "grant-own-schema-to-another-plugins-login",
        "GRANT USAGE ON SCHEMA plugin_gateway TO naap_wallet;",
        "USAGE to naap_wallet on the schema",
    ),
    Escape(
        "grant-own-function-to-public",
        "CREATE FUNCTION plugin_gateway.hello() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"
        "GRANT EXECUTE ON FUNCTION plugin_gateway.hello() TO PUBLIC;",
        "EXECUTE to PUBLIC on a routine",
    ),
    Escape(
        "grant-with-grant-option-to-its-own-group",
        "CREATE TABLE plugin_gateway.passed_on (x int);\n"
        "GRANT SELECT ON plugin_gateway.passed_on TO plugin_gateway_ro WITH GRANT OPTION;",
        "SELECT to plugin_gateway_ro WITH GRANT OPTION on a relation",
    ),
    Escape(
        "default-privileges-for-another-role",
        "ALTER DEFAULT PRIVILEGES FOR ROLE plugin_wallet_owner GRANT SELECT ON TABLES TO "
        "naap_gateway;",
        "permission denied to change default privileges",
    ),
    Escape(
        "default-privileges-of-its-owner-to-another-login",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA plugin_gateway GRANT SELECT ON TABLES TO naap_wallet;",
        "SELECT to naap_wallet on what it creates later",
    ),
    Escape(
        "create-event-trigger",
        "CREATE FUNCTION plugin_gateway.watch() RETURNS event_trigger LANGUAGE plpgsql\n"
        "AS $$ BEGIN NULL; END $$;\n"
        "CREATE EVENT TRIGGER gateway_watch ON ddl_command_start\n"
        "EXECUTE FUNCTION plugin_gateway.watch();",
        "permission denied to create event trigger",
    ),
    Escape(
        "create-role",
        "CREATE ROLE gateway_backdoor LOGIN PASSWORD 'x';",
        "permission denied to create role",
    ),
    Escape(
        "alter-another-role",
        "ALTER ROLE naap_wallet PASSWORD 'now-mine';",
        "permission denied to alter role",
    ),
    Escape(
        "alter-its-own-login",
        # PostgreSQL lets a login change its own password: a way back into
        # its schema's owner outside the push. The check sees the write.
        as_the_login("ALTER ROLE plugin_gateway_migrator PASSWORD ''known-to-the-attacker''"),
        "writes pg_authid",
    ),
    Escape(
        "alter-its-own-login-settings",
        as_the_login("ALTER ROLE plugin_gateway_migrator SET search_path = plugin_wallet"),
        "writes pg_db_role_setting",
    ),
    Escape(
        "copy-to-program",
        "COPY (SELECT 1) TO PROGRAM 'id';",
        "permission denied to COPY to or from an external program",
    ),
    Escape(
        "object-owned-by-the-login",
        as_the_login("CREATE TABLE plugin_gateway.mine (x int)"),
        "relation plugin_gateway.mine is owned by plugin_gateway_migrator",
    ),
    Escape(
        "deferred-trigger-altering-the-login-at-commit",
        # Deferred to COMMIT, after the check, it would run as the login:
        # the push fires deferred triggers before it checks.
        "CREATE TABLE plugin_gateway.tick (x int);\n"
        "CREATE FUNCTION plugin_gateway.at_commit() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN EXECUTE 'RESET ROLE';\n"
        "  EXECUTE 'ALTER ROLE plugin_gateway_migrator PASSWORD ''known''';\n"
        "  EXECUTE 'SET ROLE plugin_gateway_owner';\n"
        "  RETURN NULL; END $$;\n"
        "CREATE CONSTRAINT TRIGGER later AFTER INSERT ON plugin_gateway.tick\n"
        "  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW\n"
        "  EXECUTE FUNCTION plugin_gateway.at_commit();\n"
        "INSERT INTO plugin_gateway.tick VALUES (1);",
        "writes pg_authid",
    ),
    Escape(
        "terminate-the-orchestrating-session",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'naap_migrator';",
        "permission denied to terminate process",
    ),
]


@pytest.fixture
def deployed(fresh_pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A deployed catalogue with rows in it; the migrations folder to attack."""
    deploy(fresh_pg, SETTINGS.plan, {names.MIGRATOR: MIGRATOR_PASSWORD}, LOGIN_PASSWORD)
    monkeypatch.setenv(
        "DATABASE_URL", fresh_pg.url(user=names.MIGRATOR, password=MIGRATOR_PASSWORD)
    )
    monkeypatch.setenv(PUSH_KEY_VARIABLE, PUSH_KEY)
    source = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", source)
    assert push(source) == (0, "")
    fresh_pg.execute(SEED)
    yield source


def push(source: Path, project: Path = ROOT) -> tuple[int, str]:
    """The real push in this process: (exit code, its one-line error)."""
    import contextlib
    import io

    error = io.StringIO()
    with contextlib.redirect_stderr(error), contextlib.redirect_stdout(io.StringIO()):
        code = main(["push", "--source", str(source), "--project", str(project)])
    return code, error.getvalue().strip()


@pytest.mark.parametrize("escape", ESCAPES, ids=[e.name for e in ESCAPES])
def test_a_hostile_file_is_stopped_and_nothing_changes(
    fresh_pg: PgServer, deployed: Path, escape: Escape
) -> None:
    before = fresh_pg.dump()
    (deployed / "plugin_gateway" / HOSTILE).write_text(escape.sql + "\n")
    code, error = push(deployed)
    assert code == 2, error
    assert error.startswith("error: ") and "\n" not in error
    assert FILE_LABEL in error, error
    assert escape.stopped_by in error, error
    assert fresh_pg.dump() == before


def test_an_allowed_security_definer_still_reaches_nothing_beyond_its_schema(
    fresh_pg: PgServer, deployed: Path
) -> None:
    """Allowed by name, a SECURITY DEFINER function runs as its schema's
    owner, which has no right in any schema its plugin does not read."""
    import psycopg
    import yaml

    project = deployed.parent / "project"
    project.mkdir()
    document = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for entry in document["config"]["naap-db:plugins"]["value"]:
        if entry["plugin"] == "gateway":
            entry["securityDefiners"] = ["peek"]
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    (deployed / "plugin_gateway" / HOSTILE).write_text(
        "CREATE FUNCTION plugin_gateway.peek() RETURNS bigint SECURITY DEFINER\n"
        "LANGUAGE plpgsql AS $$ BEGIN\n"
        '  RETURN (SELECT count(*) FROM plugin_wallet."WalletConnection");\n'
        "END $$;\n"
    )
    assert push(deployed, project) == (0, "")
    denied = pytest.raises(psycopg.errors.InsufficientPrivilege, match="plugin_wallet")
    with fresh_pg.connect(user="naap_gateway", password=LOGIN_PASSWORD) as gateway, denied:
        gateway.execute("SELECT plugin_gateway.peek()")


def test_the_limit_an_invoker_trigger_acts_with_the_rights_of_whoever_fires_it(
    fresh_pg: PgServer, deployed: Path
) -> None:
    """The boundary's limit (docs/access.md): gateway's files may create a
    trigger on gateway's own table whose (invoker-rights) function writes
    into wallet. The push applies it: nothing in it reaches beyond
    gateway's schema as it runs, and nothing in wallet changes. Fired by
    `naap_app`, which may write every schema, it writes into wallet; fired
    by gateway's own login, it is denied."""
    import psycopg

    before = wallet_rows(fresh_pg)
    (deployed / "plugin_gateway" / HOSTILE).write_text(
        "CREATE TABLE plugin_gateway.route_hits (route text);\n"
        "CREATE FUNCTION plugin_gateway.spill() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        '  INSERT INTO plugin_wallet."WalletTransaction" ("connectionId", "txHash", "type",\n'
        "    \"amount\", \"token\") VALUES ('w1', 'spilled-' || NEW.route, 'send', 1, 'ETH');\n"
        "  RETURN NEW;\n"
        "END $$;\n"
        "CREATE TRIGGER spill AFTER INSERT ON plugin_gateway.route_hits\n"
        "  FOR EACH ROW EXECUTE FUNCTION plugin_gateway.spill();\n"
    )
    assert push(deployed) == (0, "")
    assert wallet_rows(fresh_pg) == before
    denied = pytest.raises(psycopg.errors.InsufficientPrivilege, match="plugin_wallet")
    with fresh_pg.connect(user="naap_gateway", password=LOGIN_PASSWORD) as gateway, denied:
        gateway.execute("INSERT INTO plugin_gateway.route_hits VALUES ('by-gateway')")
    with fresh_pg.connect(user=names.APP, password=LOGIN_PASSWORD) as app:
        app.execute("INSERT INTO plugin_gateway.route_hits VALUES ('by-app')")
    with fresh_pg.connect() as admin:
        spilled = admin.execute(
            'SELECT "txHash" FROM plugin_wallet."WalletTransaction" WHERE "txHash" LIKE %s',
            ("spilled-%",),
        ).fetchall()
    assert spilled == [("spilled-by-app",)]

"""Moving over: a database deployed by main before each schema had an owner
of its own (`naap_owner` owned every schema and object; its access plan is
tests/fixtures/legacy/<stack>-plan.sql, its push ran every file as
naap_owner) moves to the new owners with what `pulumi up` runs, and nothing
else: the access layer's new plan (new roles, schemas handed to their
owners, the replaced default privileges revoked as the provider deletes
them) and `adopt` as the admin. No table is recreated, no row lost, every
object's owner and ACL is the plan's, `verify` exits 0, and the next push
works as each schema's own login. The real engine walks the same path in
tests/test_integration_cli.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from naapdb import names, verify
from naapdb.__main__ import main
from naapdb.push import discover
from naapdb.pushkey import PUSH_KEY_VARIABLE
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.deployed import PUSH_KEY, push_passwords
from tests.pgserver import PgServer

pytestmark = pytest.mark.db

ROOT = find_project_root()
LEGACY = ROOT / "tests" / "fixtures" / "legacy"
MIGRATOR_PASSWORD = "migrator-pw-upgrade-61d0"
LOGIN_PASSWORD = "login-pw-upgrade-07be"
RDS_ADMIN = "rds_like_admin"
RDS_ADMIN_PASSWORD = "rds-admin-pw-3f90"
# A legacy default privilege: naap_owner's rights for a plugin schema's group.
LEGACY_DEFAULT = re.compile(
    r'^ALTER DEFAULT PRIVILEGES FOR ROLE "naap_owner" IN SCHEMA "(?P<schema>[a-z_0-9]+)" '
    r"GRANT (?P<privileges>[A-Z, ]+) ON (?P<kind>[A-Z]+) TO (?P<role>\"[a-z_0-9]+\");$"
)


def legacy_push(server: PgServer, source: Path, stack: str) -> None:
    """What main's push did before: each file in its own transaction as
    naap_owner, its schema alone on the search path, recorded in the ledger."""
    settings = load_stack_settings(stack, ROOT)
    migrator = settings.plan.logins_of(names.MIGRATOR)[0]
    with server.connect(user=migrator, password=MIGRATOR_PASSWORD) as connection:
        with connection.transaction():
            connection.execute("SET LOCAL ROLE naap_owner")
            connection.execute(
                "CREATE TABLE naap_meta.schema_migrations (schema text NOT NULL, "
                "version integer NOT NULL CHECK (version > 0), name text NOT NULL, "
                "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
                "duration_ms integer NOT NULL, PRIMARY KEY (schema, version))"
            )
        for migration in discover(source, settings.catalog):
            with connection.transaction():
                connection.execute(
                    sql.SQL("SET LOCAL ROLE naap_owner; SET LOCAL search_path TO {}").format(
                        sql.Identifier(migration.schema)
                    )
                )
                connection.execute(migration.sql)  # type: ignore[arg-type]
                connection.execute(
                    "INSERT INTO naap_meta.schema_migrations "
                    "(schema, version, name, checksum, duration_ms) VALUES (%s, %s, %s, %s, 1)",
                    (migration.schema, migration.version, migration.file_name, migration.checksum),
                )


def legacy_defaults_revoked(stack: str) -> str:
    """The provider's delete of each replaced DefaultPrivileges resource (its
    owner was naap_owner, now the schema's own): REVOKE what it granted."""
    statements = []
    for line in (LEGACY / f"{stack}-plan.sql").read_text().splitlines():
        match = LEGACY_DEFAULT.match(line)
        if match and match["schema"] != names.META_SCHEMA:
            statements.append(
                f'ALTER DEFAULT PRIVILEGES FOR ROLE "naap_owner" IN SCHEMA "{match["schema"]}" '
                f"REVOKE ALL ON {match['kind']} FROM {match['role']};"
            )
    assert statements
    return "\n".join(statements)


def state(server: PgServer) -> dict[str, Any]:
    """What must survive: every relation's oid (none recreated), every row of
    every table in the catalogue's schemas, the ledger."""
    with server.connect() as admin:
        relations = admin.execute(
            "SELECT n.nspname, c.relname, c.oid FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%s) ORDER BY 1, 2",
            ([*load_stack_settings("dev", ROOT).catalog.schemas, names.META_SCHEMA],),
        ).fetchall()
        rows = {
            f"{schema}.{name}": admin.execute(
                sql.SQL("SELECT * FROM {}.{} ORDER BY 1").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            ).fetchall()
            for schema, name in admin.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)",
                ([*load_stack_settings("dev", ROOT).catalog.schemas, names.META_SCHEMA],),
            ).fetchall()
        }
    return {"relations": relations, "rows": rows}


SEED = """
INSERT INTO public."User" ("id", "email", "name") VALUES ('u1', 'ada@example.com', 'Ada');
INSERT INTO plugin_wallet."WalletConnection" ("id", "userId", "address", "chainId", "provider")
VALUES ('w1', 'u1', '0xabc', 1, 'metamask');
INSERT INTO plugin_community."CommunityPost" ("authorId", "title", "body")
VALUES ('u1', 'hello', 'first post');
"""


def run_cli(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    with monkeypatch.context() as patch:
        patch.setenv("DATABASE_URL", url)
        patch.setenv(PUSH_KEY_VARIABLE, PUSH_KEY)
        return main([*argv, "--project", str(ROOT)])


@pytest.mark.parametrize("admin", ["superuser", "createrole"])
def test_a_legacy_database_moves_over_with_what_pulumi_up_runs(
    fresh_pg: PgServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    admin: str,
) -> None:
    settings = load_stack_settings("dev", ROOT)
    legacy_plan = (LEGACY / "dev-plan.sql").read_text()
    fresh_pg.execute(legacy_plan)
    old_logins = {role.name for role in settings.plan.login_roles if role.name in legacy_plan}
    fresh_pg.set_passwords(
        {login: LOGIN_PASSWORD for login in old_logins} | {names.MIGRATOR: MIGRATOR_PASSWORD}
    )
    source = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", source)
    legacy_push(fresh_pg, source, "dev")
    fresh_pg.execute(SEED)
    with fresh_pg.connect() as superuser:
        owners = superuser.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'plugin_wallet'"
        ).fetchall()
    assert owners == [(names.OWNER,)]  # the legacy model, as deployed
    before = state(fresh_pg)

    # `pulumi up`: the access layer of the new plan, as the provider applies it
    fresh_pg.execute(plan_to_sql(settings.plan))
    fresh_pg.execute(legacy_defaults_revoked("dev"))
    fresh_pg.set_passwords(push_passwords(settings.plan))
    admin_url = fresh_pg.url()
    if admin == "createrole":
        # RDS's admin: CREATEROLE, not superuser, ADMIN OPTION on the roles
        # it created (PostgreSQL 16 gives it no INHERIT and no SET on them).
        fresh_pg.execute(
            f"CREATE ROLE {RDS_ADMIN} LOGIN CREATEROLE PASSWORD '{RDS_ADMIN_PASSWORD}';"
            f" GRANT CONNECT ON DATABASE naap TO {RDS_ADMIN};"
            + "".join(
                f" GRANT {role.name} TO {RDS_ADMIN} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;"
                for role in settings.plan.roles
                if not role.login
            )
        )
        admin_url = fresh_pg.url(user=RDS_ADMIN, password=RDS_ADMIN_PASSWORD)
    # ... then the admin's adoption, then the push
    capsys.readouterr()
    assert run_cli(monkeypatch, admin_url, "adopt", "--stack", "dev") == 0
    adopted = capsys.readouterr().out.splitlines()
    tables = sum(1 for line in adopted if " OWNER TO " in line)
    assert tables >= 20 and adopted[-1].startswith(f"adopted: {tables} objects")
    migrator_url = fresh_pg.url(user=names.MIGRATOR, password=MIGRATOR_PASSWORD)
    assert run_cli(monkeypatch, migrator_url, "push", "--stack", "dev") == 0
    assert capsys.readouterr().out == "up to date\n"

    assert state(fresh_pg) == before  # no relation recreated, no row lost, the ledger kept
    with fresh_pg.connect() as superuser:
        report = verify.verify(superuser, settings.plan, settings.budget)
        assert report.differences == ()
        if admin == "createrole":  # what it borrowed, it gave back
            borrowed = superuser.execute(
                "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                "WHERE r.rolname = %s AND (m.inherit_option OR m.set_option)",
                (RDS_ADMIN,),
            ).fetchone()
            assert borrowed == (0,)
    # A second adoption has nothing left to do.
    assert run_cli(monkeypatch, admin_url, "adopt", "--stack", "dev") == 0
    assert capsys.readouterr().out.startswith("nothing to adopt")

    # The next file runs as its schema's own login and is usable at once.
    (source / "plugin_wallet" / "0002_notes.sql").write_text(
        'CREATE TABLE plugin_wallet."WalletNote" (id serial PRIMARY KEY, note text);\n'
    )
    assert run_cli(monkeypatch, migrator_url, "push", "--source", str(source)) == 0
    with fresh_pg.connect(user="naap_wallet", password=LOGIN_PASSWORD) as wallet:
        wallet.execute("""INSERT INTO plugin_wallet."WalletNote" (note) VALUES ('mine')""")
        assert wallet.execute(
            'SELECT count(*) FROM plugin_wallet."WalletConnection"'
        ).fetchone() == (1,)
    with (
        fresh_pg.connect(user="naap_community", password=LOGIN_PASSWORD) as community,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        community.execute('SELECT * FROM plugin_wallet."WalletNote"')
    with fresh_pg.connect() as superuser:
        owner = superuser.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'WalletNote'"
        ).fetchone()
        assert owner == ("plugin_wallet_owner",)
        assert verify.verify(superuser, settings.plan).differences == ()

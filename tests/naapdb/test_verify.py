"""`verify` against a real PostgreSQL: the plan's SQL applied, objects
created by their schema's owner, then each kind of drift made by hand, one at a time;
verify must exit 1, name it, and its fix SQL must really fix it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import psycopg
import pytest
from psycopg import pq, sql

from naapdb import names
from naapdb import verify as verify_module
from naapdb.__main__ import build_parser, main
from naapdb.catalog import parse_catalog
from naapdb.commands import verify as verify_command
from naapdb.plan import AccessPlan, build_plan
from naapdb.pushkey import PUSH_KEY_VARIABLE
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.deployed import PUSH_KEY, deploy
from tests.naapdb.test_rotate import rotation_ca
from tests.pgserver import PgServer, free_port
from tests.tlsca import CaFiles
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = pytest.mark.db
__all__ = ["rotation_ca"]  # a fixture this module uses from test_rotate

ROOT = find_project_root()
DEV_PLAN = load_stack_settings("dev", ROOT).plan
READONLY_PASSWORD = "ro-pw-4c2f8a9e1b7d"


def create_objects(server: PgServer, plan: AccessPlan) -> None:
    """A table with a serial key and a function in every plugin schema, a
    ledger-like table in naap_meta, a view and a procedure in one schema;
    each created by its schema's owner after the grants, as the push does."""
    statements: list[sql.Composable] = []
    for schema in plan.schemas:
        name = sql.Identifier(schema.name)
        statements.append(sql.SQL("SET ROLE {}").format(sql.Identifier(schema.owner)))
        statements.append(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.items (id serial PRIMARY KEY, label text)"
            ).format(name)
        )
        if schema.plugin is not None:
            statements.append(
                sql.SQL(
                    "CREATE OR REPLACE FUNCTION {}.item_count() RETURNS bigint LANGUAGE sql "
                    "AS 'SELECT count(*) FROM {}.items'"
                ).format(name, name)
            )
    if "plugin_wallet" in {schema.name for schema in plan.schemas}:
        statements += [
            sql.SQL("SET ROLE plugin_wallet_owner"),
            sql.SQL(
                "CREATE OR REPLACE VIEW plugin_wallet.item_labels AS "
                "SELECT label FROM plugin_wallet.items"
            ),
            sql.SQL(
                "CREATE OR REPLACE PROCEDURE plugin_wallet.touch(n int) LANGUAGE sql AS 'SELECT n'"
            ),
        ]
    server.execute(";\n".join(statement.as_string(None) for statement in statements))


def apply_plan(server: PgServer, plan: AccessPlan) -> None:
    server.execute(plan_to_sql(plan))
    create_objects(server, plan)


@pytest.fixture
def dev_db(fresh_pg: PgServer) -> PgServer:
    apply_plan(fresh_pg, DEV_PLAN)
    return fresh_pg


def run_verify(
    server: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *options: str,
    stack: str = "dev",
    user: str = "postgres",
    password: str | None = None,
) -> tuple[int, str, str]:
    """The command in-process: its run function, DATABASE_URL in the environment."""
    monkeypatch.setenv("DATABASE_URL", server.url(user=user, password=password))
    args = build_parser().parse_args(["verify", "--stack", stack, *options])
    code = verify_command.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def drift_lines(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.startswith("  ")]


def fixes_of(server: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> list[str]:
    code, out, _ = run_verify(server, monkeypatch, capsys, "--format", "json")
    assert code == 1
    return [difference["fix"] for difference in json.loads(out)["differences"]]


# --- no drift ----------------------------------------------------------------


def test_the_applied_plan_has_no_drift(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_verify(dev_db, monkeypatch, capsys)
    assert (code, out) == (0, "")
    assert err.count("\n") == 1
    assert err.startswith("verify: no drift: database naap matches the plan of stack dev")
    assert "9 schemas, 1 query" in err
    assert err.rstrip().endswith(
        f"read the primary {dev_db.host}:{dev_db.port} (PostgreSQL {report_version(dev_db)})"
    )


def report_version(server: PgServer) -> str:
    """The server's version as `SHOW server_version` gives it (e.g. 16.2)."""
    with server.connect() as connection:
        row = connection.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


def test_json_report_without_drift(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_verify(dev_db, monkeypatch, capsys, "--format", "json")
    report = json.loads(out)
    assert code == 0
    # Which server it read (issue 24): the primary the URL names.
    assert report.pop("server") == {
        "host": dev_db.host,
        "port": dev_db.port,
        "version": report_version(dev_db),
        "role": "primary",
        "replay_lsn": None,
        "replay_age_seconds": None,
        "via": None,
    }
    assert report == {
        "format_version": 1,
        "stack": "dev",
        "database": "naap",
        "drift": False,
        "queries": 1,
        "differences": [],
    }


def test_a_role_outside_the_plan_without_rights_is_not_drift(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute("CREATE ROLE bystander LOGIN; CREATE ROLE ops_admin LOGIN CREATEROLE")
    # an admin's privileges are not drift either
    dev_db.execute("GRANT SELECT ON plugin_wallet.items TO ops_admin")
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


def test_objects_created_later_by_the_owner_are_covered_by_default_privileges(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute(
        "SET ROLE plugin_gateway_owner; CREATE TABLE plugin_gateway.routes (id bigint "
        "GENERATED ALWAYS AS IDENTITY, path text); "
        "CREATE FUNCTION plugin_gateway.route_count() RETURNS bigint LANGUAGE sql "
        "AS 'SELECT count(*) FROM plugin_gateway.routes'"
    )
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


# --- each kind of drift ----------------------------------------------------------

# (id, SQL run by the superuser, the difference line verify must print)
DRIFTS = [
    (
        "hand-grant-to-another-plugins-login",
        "GRANT SELECT ON plugin_wallet.items TO naap_community",
        "extra grant: naap_community has SELECT on table plugin_wallet.items (not in the plan); "
        'fix: REVOKE SELECT ON TABLE "plugin_wallet"."items" FROM "naap_community";',
    ),
    (
        "hand-grant-to-another-plugins-rw-role",
        "GRANT SELECT, UPDATE ON plugin_wallet.items TO plugin_community_rw",
        "extra grant: plugin_community_rw has SELECT, UPDATE on table plugin_wallet.items "
        '(not in the plan); fix: REVOKE SELECT, UPDATE ON TABLE "plugin_wallet"."items" '
        'FROM "plugin_community_rw";',
    ),
    (
        "revoked-default-privilege",
        "ALTER DEFAULT PRIVILEGES FOR ROLE plugin_community_owner IN SCHEMA plugin_community "
        "REVOKE SELECT ON TABLES FROM plugin_community_ro",
        "missing default privilege: plugin_community_ro does not get SELECT on tables "
        "plugin_community_owner creates in plugin_community; fix: ALTER DEFAULT PRIVILEGES "
        'FOR ROLE "plugin_community_owner" IN SCHEMA "plugin_community" GRANT SELECT ON '
        'TABLES TO "plugin_community_ro";',
    ),
    (
        "dropped-membership",
        "REVOKE public_ro FROM naap_wallet",
        'missing membership: naap_wallet is not a member of public_ro; fix: GRANT "public_ro" '
        'TO "naap_wallet";',
    ),
    (
        "superuser",
        "ALTER ROLE naap_gateway SUPERUSER",
        'role attribute: role naap_gateway has SUPERUSER; fix: ALTER ROLE "naap_gateway" '
        "NOSUPERUSER;",
    ),
    (
        "createrole",
        "ALTER ROLE plugin_daydream_rw CREATEROLE",
        "role attribute: role plugin_daydream_rw has CREATEROLE; fix: ALTER ROLE "
        '"plugin_daydream_rw" NOCREATEROLE;',
    ),
    (
        "connection-limit-raised",
        "ALTER ROLE naap_wallet CONNECTION LIMIT 50",
        "role limit: role naap_wallet has connection limit 50, the plan says 5; fix: "
        'ALTER ROLE "naap_wallet" CONNECTION LIMIT 5;',
    ),
    (
        "connection-limit-removed",
        "ALTER ROLE naap_app CONNECTION LIMIT -1",
        "role limit: role naap_app has no connection limit, the plan says 20; fix: "
        'ALTER ROLE "naap_app" CONNECTION LIMIT 20;',
    ),
    (
        # A login may do this to itself: it needs no privilege.
        "statement-timeout-off",
        "ALTER ROLE naap_gateway SET statement_timeout = 0",
        "role limit: role naap_gateway has statement_timeout 0, the plan says 30s; fix: "
        'ALTER ROLE "naap_gateway" SET statement_timeout = 30000;',
    ),
    (
        "idle-timeout-reset",
        "ALTER ROLE naap_readonly RESET idle_in_transaction_session_timeout",
        "role limit: role naap_readonly has idle_in_transaction_session_timeout no value, the "
        'plan says 1min; fix: ALTER ROLE "naap_readonly" SET '
        "idle_in_transaction_session_timeout = 60000;",
    ),
    (
        "timeout-overridden-in-the-database",
        "ALTER ROLE naap_community IN DATABASE naap SET statement_timeout = '1h'",
        "role limit: role naap_community has statement_timeout = 1h in database naap, which "
        'overrides the plan\'s 30s; fix: ALTER ROLE "naap_community" IN DATABASE "naap" '
        "RESET statement_timeout;",
    ),
    (
        "table-owned-by-the-wrong-role",
        "ALTER TABLE plugin_dashboard.items OWNER TO naap_dashboard",
        "object owner: table plugin_dashboard.items is owned by naap_dashboard, not "
        'plugin_dashboard_owner; fix: ALTER TABLE "plugin_dashboard"."items" OWNER TO '
        '"plugin_dashboard_owner";',
    ),
    (
        "grant-to-public",
        "GRANT SELECT ON public.items TO PUBLIC",
        "extra grant: PUBLIC has SELECT on table public.items (not in the plan); "
        'fix: REVOKE SELECT ON TABLE "public"."items" FROM PUBLIC;',
    ),
    (
        "schema-usage-to-public",
        "GRANT USAGE ON SCHEMA plugin_capacity TO PUBLIC",
        "extra grant: PUBLIC has USAGE on schema plugin_capacity (not in the plan); "
        'fix: REVOKE USAGE ON SCHEMA "plugin_capacity" FROM PUBLIC;',
    ),
    (
        "function-execute-to-public",
        "GRANT EXECUTE ON FUNCTION plugin_wallet.item_count() TO PUBLIC",
        "extra grant: PUBLIC has EXECUTE on function plugin_wallet.item_count() (not in the "
        'plan); fix: REVOKE EXECUTE ON FUNCTION "plugin_wallet"."item_count"() FROM PUBLIC;',
    ),
    (
        "global-function-revoke-undone",
        "ALTER DEFAULT PRIVILEGES FOR ROLE naap_owner GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
        "extra default privilege: PUBLIC gets EXECUTE on functions naap_owner creates in any "
        'schema (not in the plan); fix: ALTER DEFAULT PRIVILEGES FOR ROLE "naap_owner" '
        "REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;",
    ),
    (
        "extra-role-with-rights",
        "CREATE ROLE intruder LOGIN; GRANT SELECT ON plugin_wallet.items TO intruder",
        "extra grant: intruder (a role outside the plan) has SELECT on table "
        "plugin_wallet.items (not in the plan); fix: REVOKE SELECT ON TABLE "
        '"plugin_wallet"."items" FROM "intruder";',
    ),
    (
        "extra-role-in-a-group",
        "CREATE ROLE intruder LOGIN; GRANT plugin_wallet_ro TO intruder",
        "extra membership: intruder (a role outside the plan) is a member of plugin_wallet_ro "
        '(not in the plan); fix: REVOKE "plugin_wallet_ro" FROM "intruder";',
    ),
    (
        "membership-with-admin-option",
        "GRANT plugin_wallet_rw TO naap_wallet WITH ADMIN OPTION",
        "membership option: naap_wallet is a member of plugin_wallet_rw WITH ADMIN OPTION (may "
        'grant it to others); fix: REVOKE ADMIN OPTION FOR "plugin_wallet_rw" FROM "naap_wallet";',
    ),
    (
        "membership-without-inherit",
        "GRANT plugin_wallet_rw TO naap_app WITH INHERIT FALSE",
        "membership option: naap_app is a member of plugin_wallet_rw without INHERIT; "
        'fix: GRANT "plugin_wallet_rw" TO "naap_app" WITH INHERIT TRUE;',
    ),
    (
        "plugin-login-acting-as-owner",
        "GRANT naap_owner TO naap_community",
        "extra membership: naap_community is a member of naap_owner (not in the plan); "
        'fix: REVOKE "naap_owner" FROM "naap_community";',
    ),
    (
        "predefined-role",
        "GRANT pg_read_all_data TO naap_daydream",
        "extra membership: naap_daydream is a member of pg_read_all_data (not in the plan); "
        'fix: REVOKE "pg_read_all_data" FROM "naap_daydream";',
    ),
    (
        "column-grant",
        "GRANT UPDATE (label) ON plugin_wallet.items TO naap_app",
        "extra grant: naap_app has UPDATE on column plugin_wallet.items.label (not in the "
        'plan); fix: REVOKE UPDATE ("label") ON TABLE "plugin_wallet"."items" FROM "naap_app";',
    ),
    (
        "database-create",
        "GRANT CREATE ON DATABASE naap TO naap_app",
        "extra grant: naap_app has CREATE on database naap (not in the plan); "
        'fix: REVOKE CREATE ON DATABASE "naap" FROM "naap_app";',
    ),
    # CONNECT belongs to naap_connect alone; the identities connect as its members.
    (
        "connect-to-a-plan-login",
        "GRANT CONNECT ON DATABASE naap TO naap_wallet",
        "extra grant: naap_wallet has CONNECT on database naap (not in the plan); "
        'fix: REVOKE CONNECT ON DATABASE "naap" FROM "naap_wallet";',
    ),
    (
        "connect-to-a-role-outside-the-plan",
        "CREATE ROLE intruder LOGIN; GRANT CONNECT ON DATABASE naap TO intruder",
        "extra grant: intruder (a role outside the plan) has CONNECT on database naap (not in "
        'the plan); fix: REVOKE CONNECT ON DATABASE "naap" FROM "intruder";',
    ),
    (
        "left-the-connect-group",
        "REVOKE naap_connect FROM naap_gateway",
        "missing membership: naap_gateway is not a member of naap_connect; "
        'fix: GRANT "naap_connect" TO "naap_gateway";',
    ),
    (
        "role-outside-the-plan-in-the-connect-group",
        "CREATE ROLE intruder LOGIN; GRANT naap_connect TO intruder",
        "extra membership: intruder (a role outside the plan) is a member of naap_connect "
        '(not in the plan); fix: REVOKE "naap_connect" FROM "intruder";',
    ),
    (
        "connect-group-lost-connect",
        "REVOKE CONNECT ON DATABASE naap FROM naap_connect",
        "missing grant: naap_connect lacks CONNECT on database naap; "
        'fix: GRANT CONNECT ON DATABASE "naap" TO "naap_connect";',
    ),
    (
        "grant-option",
        "GRANT SELECT ON public.items TO public_ro WITH GRANT OPTION",
        "extra grant: public_ro has SELECT on table public.items WITH GRANT OPTION (may pass "
        'it on); fix: REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."items" FROM "public_ro";',
    ),
    (
        "revoked-table-grant",
        "REVOKE DELETE ON plugin_developer_api.items FROM plugin_developer_api_rw",
        "missing grant: plugin_developer_api_rw lacks DELETE on table "
        'plugin_developer_api.items; fix: GRANT DELETE ON TABLE "plugin_developer_api"."items" '
        'TO "plugin_developer_api_rw";',
    ),
    # The plan grants nothing on objects: what an object must hold is what
    # its schema's default privileges gave it, and a revoke is still drift.
    (
        "revoked-sequence-grant",
        "REVOKE UPDATE ON SEQUENCE plugin_wallet.items_id_seq FROM plugin_wallet_rw",
        "missing grant: plugin_wallet_rw lacks UPDATE on sequence plugin_wallet.items_id_seq; "
        'fix: GRANT UPDATE ON SEQUENCE "plugin_wallet"."items_id_seq" TO "plugin_wallet_rw";',
    ),
    (
        "revoked-function-grant",
        "REVOKE EXECUTE ON FUNCTION plugin_gateway.item_count() FROM plugin_gateway_rw",
        "missing grant: plugin_gateway_rw lacks EXECUTE on function "
        "plugin_gateway.item_count(); fix: GRANT EXECUTE ON FUNCTION "
        '"plugin_gateway"."item_count"() TO "plugin_gateway_rw";',
    ),
    (
        "revoked-view-grant",
        "REVOKE SELECT ON plugin_wallet.item_labels FROM plugin_wallet_ro",
        "missing grant: plugin_wallet_ro lacks SELECT on view plugin_wallet.item_labels; "
        'fix: GRANT SELECT ON TABLE "plugin_wallet"."item_labels" TO "plugin_wallet_ro";',
    ),
    (
        "security-definer-function",
        "SET ROLE plugin_wallet_owner; CREATE FUNCTION plugin_wallet.act_as_owner() "
        "RETURNS int SECURITY DEFINER LANGUAGE sql AS 'SELECT 1'",
        "security definer: function plugin_wallet.act_as_owner() is SECURITY DEFINER: whoever "
        "may call it acts with the rights of plugin_wallet_owner; allow it by name in its "
        "catalogue entry's securityDefiners, or make it SECURITY INVOKER; fix: ALTER FUNCTION "
        '"plugin_wallet"."act_as_owner"() SECURITY INVOKER;',
    ),
    (
        "event-trigger",
        "SET ROLE public_owner; CREATE FUNCTION public.on_ddl() RETURNS event_trigger "
        "LANGUAGE plpgsql AS 'BEGIN END'; RESET ROLE; "
        "CREATE EVENT TRIGGER on_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl()",
        "event trigger: event trigger on_ddl (on ddl_command_start, owned by postgres) runs its "
        'function on every matching command in every schema; fix: DROP EVENT TRIGGER "on_ddl";',
    ),
    (
        "type-owned-by-the-wrong-role",
        "CREATE TYPE plugin_wallet.mood AS ENUM ('up', 'down')",
        "object owner: type plugin_wallet.mood is owned by postgres, not plugin_wallet_owner; "
        'fix: ALTER TYPE "plugin_wallet"."mood" OWNER TO "plugin_wallet_owner";',
    ),
    (
        "an-owners-functions-executable-by-public",
        "ALTER DEFAULT PRIVILEGES FOR ROLE plugin_gateway_owner GRANT EXECUTE ON FUNCTIONS "
        "TO PUBLIC",
        "extra default privilege: PUBLIC gets EXECUTE on functions plugin_gateway_owner creates "
        "in any schema (not in the plan); fix: ALTER DEFAULT PRIVILEGES FOR ROLE "
        '"plugin_gateway_owner" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;',
    ),
    (
        "a-plugin-login-acting-as-another-schemas-owner",
        "GRANT plugin_wallet_owner TO naap_gateway",
        "extra membership: naap_gateway is a member of plugin_wallet_owner (not in the plan); "
        'fix: REVOKE "plugin_wallet_owner" FROM "naap_gateway";',
    ),
    (
        "extra-schema",
        "CREATE SCHEMA scratch",
        "extra schema: schema scratch is not in the catalogue (naap-db:plugins); its contents "
        'are not compared; fix: DROP SCHEMA "scratch" RESTRICT;',
    ),
    (
        "schema-owner",
        "ALTER SCHEMA plugin_gateway OWNER TO naap_migrator",
        "schema owner: schema plugin_gateway is owned by naap_migrator, not "
        'plugin_gateway_owner; fix: ALTER SCHEMA "plugin_gateway" OWNER TO '
        '"plugin_gateway_owner";',
    ),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(sql_, line) for _, sql_, line in DRIFTS], ids=[d[0] for d in DRIFTS]
)
def test_each_drift_is_named_with_its_fix(
    dev_db: PgServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: str,
    expected: str,
) -> None:
    dev_db.execute(change)
    code, out, err = run_verify(dev_db, monkeypatch, capsys)
    assert code == 1
    assert drift_lines(out) == [expected]
    assert "1 difference from the plan of stack dev" in err
    # the fix really fixes it
    for fix in fixes_of(dev_db, monkeypatch, capsys):
        dev_db.execute(fix)
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


def test_a_missing_schema_lists_it_and_what_depends_on_it(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute("DROP SCHEMA plugin_capacity CASCADE")
    code, out, _ = run_verify(dev_db, monkeypatch, capsys)
    assert code == 1
    summary, details = out.split("details:\n")
    assert summary.startswith("summary: 8 differences; the database lacks what `pulumi up")
    assert "- missing schema: 1 (plugin_capacity)" in summary.splitlines()
    assert details.splitlines()[0] == "schema plugin_capacity"
    lines = drift_lines(out)
    assert lines[0] == (
        "missing schema: schema plugin_capacity does not exist; "
        'fix: CREATE SCHEMA "plugin_capacity" AUTHORIZATION "plugin_capacity_owner";'
    )
    assert all("plugin_capacity" in line for line in lines)
    assert sum(line.startswith("missing grant: ") for line in lines) == 2  # USAGE for rw, ro
    assert sum(line.startswith("missing default privilege: ") for line in lines) == 5
    for fix in fixes_of(dev_db, monkeypatch, capsys):
        dev_db.execute(fix)
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


def test_a_table_created_by_the_wrong_role_lacks_the_plan_grants(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute("CREATE TABLE plugin_wallet.stray (id serial PRIMARY KEY)")  # as postgres
    code, out, _ = run_verify(dev_db, monkeypatch, capsys)
    assert code == 1
    lines = drift_lines(out)
    assert lines[0].startswith(
        "object owner: table plugin_wallet.stray is owned by postgres, not plugin_wallet_owner"
    )
    # the serial sequence follows its table: no line of its own for the owner
    assert not any("sequence plugin_wallet.stray_id_seq is owned" in line for line in lines)
    assert any(
        line.startswith(
            "missing grant: plugin_wallet_rw lacks SELECT, INSERT, UPDATE, DELETE "
            "on table plugin_wallet.stray"
        )
        for line in lines
    )
    assert any(
        "lacks SELECT, UPDATE, USAGE on sequence plugin_wallet.stray_id_seq" in line
        for line in lines
    )
    for fix in fixes_of(dev_db, monkeypatch, capsys):
        dev_db.execute(fix)
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


def test_text_output_groups_by_schema_and_json_carries_the_same(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute(
        "GRANT SELECT ON plugin_wallet.items TO naap_community; "
        "ALTER ROLE naap_gateway CREATEDB; "
        "GRANT TEMPORARY ON DATABASE naap TO PUBLIC; "
        "GRANT SELECT ON public.items TO PUBLIC; "
        "CREATE SCHEMA roles"  # a schema may bear a group's name
    )
    code, out, _ = run_verify(dev_db, monkeypatch, capsys)
    assert code == 1
    headers = [line for line in out.splitlines() if not line.startswith("  ")]
    assert headers == [
        "roles",
        "database naap",
        "schema public",
        "schema plugin_wallet",
        "schema roles",
    ]
    code, out, _ = run_verify(dev_db, monkeypatch, capsys, "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["drift"] is True and report["queries"] == 1
    assert [(d["kind"], d["scope"], d["schema"], d["role"]) for d in report["differences"]] == [
        ("role-attribute", "roles", None, "naap_gateway"),
        ("extra-grant", "database", None, "public"),
        ("extra-grant", "schema", "public", "public"),
        ("extra-grant", "schema", "plugin_wallet", "naap_community"),
        ("extra-schema", "schema", "roles", None),
    ]
    assert report["differences"][3]["privileges"] == ["SELECT"]
    assert report["differences"][3]["group"] == "schema plugin_wallet"


def test_no_drift_after_the_real_push_of_the_sample_migrations(
    fresh_pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The push (each schema's files as its push login, acting as its owner)
    leaves nothing verify would flag: its tables, sequences, cross-schema
    keys, the ledger and its recorder; the ledger read back names every file."""
    deploy(fresh_pg, DEV_PLAN, {names.MIGRATOR: "migrator-pw-5e0b2d"}, "login-pw-5e0b2d")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    environment["DATABASE_URL"] = fresh_pg.url(user=names.MIGRATOR, password="migrator-pw-5e0b2d")
    environment[PUSH_KEY_VARIABLE] = PUSH_KEY
    push = subprocess.run(
        [sys.executable, "-m", "naapdb", "push", "--stack", "dev"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert push.returncode == 0, push.stderr
    with fresh_pg.connect() as connection:
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = ANY(%s)",
            ([schema.name for schema in DEV_PLAN.schemas],),
        ).fetchone()
    assert tables is not None and tables[0] > len(DEV_PLAN.schemas)
    assert run_verify(fresh_pg, monkeypatch, capsys)[:2] == (0, "")
    # A forged ledger row (a file never in the tree) is drift, with its fix.
    fresh_pg.execute(
        "INSERT INTO naap_meta.schema_migrations (schema, version, name, checksum, duration_ms)"
        " VALUES ('plugin_wallet', 7, '0007_forged.sql', 'f00d', 1)"
    )
    code, out, _ = run_verify(fresh_pg, monkeypatch, capsys)
    assert code == 1
    assert drift_lines(out) == [
        "ledger row: the ledger records plugin_wallet version 0007 (0007_forged.sql), but no "
        "such file exists; a push stops on it (restore the file if it was applied for real; "
        'delete the row if it was never a file); fix: DELETE FROM "naap_meta"."schema_migrations"'
        " WHERE schema = 'plugin_wallet' AND version = 7;"
    ]
    # naap_readonly reads the ledger too: it sees the same.
    code, out, _ = run_verify(
        fresh_pg, monkeypatch, capsys, user=names.READONLY, password="login-pw-5e0b2d"
    )
    assert code == 1 and "ledger row: " in out
    for fix in fixes_of(fresh_pg, monkeypatch, capsys):
        fresh_pg.execute(fix)
    assert run_verify(fresh_pg, monkeypatch, capsys)[:2] == (0, "")


def test_the_fixes_as_one_psql_script_bring_the_database_back(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `pulumi destroy` leaves, and more: `--format sql` is the whole way
    back in one script for the admin, owners first."""
    dev_db.execute(
        "ALTER TABLE plugin_wallet.items OWNER TO postgres;"
        " REVOKE SELECT ON plugin_wallet.items FROM plugin_wallet_ro;"
        " GRANT plugin_wallet_owner TO naap_gateway;"
        " CREATE SCHEMA scratch"
    )
    code, script, _ = run_verify(dev_db, monkeypatch, capsys, "--format", "sql")
    assert code == 1
    lines = script.splitlines()
    assert lines[2:4] == ["\\set ON_ERROR_STOP on", "BEGIN;"] and lines[-1] == "COMMIT;"
    statements = [line for line in lines if line and not line.startswith(("--", "\\"))]
    assert statements[1].startswith('ALTER TABLE "plugin_wallet"."items" OWNER TO')
    assert (
        '-- not run (extra-schema, a person\'s decision): DROP SCHEMA "scratch" RESTRICT;' in lines
    )
    with dev_db.connect() as admin:
        admin.execute("\n".join(line for line in lines if not line.startswith("\\")))
    dev_db.execute("DROP SCHEMA scratch")
    assert run_verify(dev_db, monkeypatch, capsys)[:2] == (0, "")


# --- rights, rotation, errors ----------------------------------------------------


def test_naap_readonly_can_run_verify(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The catalogs are world-readable: CONNECT on naap (as a member of
    naap_connect) is all verify needs."""
    dev_db.execute(f"ALTER ROLE naap_readonly PASSWORD '{READONLY_PASSWORD}'")
    as_readonly = {"user": names.READONLY, "password": READONLY_PASSWORD}
    assert run_verify(dev_db, monkeypatch, capsys, **as_readonly)[:2] == (0, "")
    dev_db.execute(
        "GRANT SELECT ON plugin_wallet.items TO naap_community; ALTER ROLE naap_app SUPERUSER"
    )
    code, out, _ = run_verify(dev_db, monkeypatch, capsys, **as_readonly)
    assert code == 1
    assert [line.split(";")[0] for line in drift_lines(out)] == [
        "role attribute: role naap_app has SUPERUSER",
        "extra grant: naap_community has SELECT on table plugin_wallet.items (not in the plan)",
    ]


def test_alternating_rotation_prod_plan(
    rotation_ca: tuple[TlsBuild, CaFiles],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """prod's server is RDS, so verify connects verify-full: here to a TLS
    server whose test CA is trusted as the RDS CA would be."""
    prod_plan = load_stack_settings("prod", ROOT).plan
    with tls_server(*rotation_ca) as server:
        apply_plan(server, prod_plan)
        # The test server's max_connections is far below the 901 of prod's
        # instance class (naapdb.limits): the only difference at first.
        budget = "connection budget: the server has max_connections"
        code, out, _ = run_verify(server, monkeypatch, capsys, stack="prod")
        assert code == 1 and [line[: len(budget)] for line in drift_lines(out)] == [budget]
        assert "but the budget needs 572" in out
        server.execute("ALTER ROLE naap_wallet LOGIN; REVOKE naap_wallet FROM naap_wallet_b")
        code, out, _ = run_verify(server, monkeypatch, capsys, stack="prod")
    assert code == 1
    assert [line.split(";")[0].split(" (")[0] for line in drift_lines(out)][:2] == [
        "role attribute: role naap_wallet is LOGIN, the plan says NOLOGIN",
        "missing membership: naap_wallet_b is not a member of naap_wallet",
    ]


def test_the_dev_plan_against_a_prod_database_is_drift(
    fresh_pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    apply_plan(fresh_pg, load_stack_settings("prod", ROOT).plan)
    code, out, _ = run_verify(fresh_pg, monkeypatch, capsys, stack="dev")
    assert code == 1
    # single rotation: each identity logs in itself, and the _a/_b logins are
    # roles outside the plan that carry an identity's rights; the identity
    # itself, a NOLOGIN group in prod, has none of a login's limits
    lines = [line.split(";")[0] for line in drift_lines(out)]
    identities = load_stack_settings("dev", ROOT).plan.identities
    assert len(lines) == 6 * len(identities)
    assert "role attribute: role naap_wallet is NOLOGIN, the plan says LOGIN" in lines
    assert "role limit: role naap_wallet has no connection limit, the plan says 5" in lines
    assert (
        "extra membership: naap_wallet_a (a role outside the plan) is a member of naap_wallet "
        "(not in the plan)"
    ) in lines


def test_errors_exit_2_in_one_line_without_the_password(
    fresh_pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "Wr0ng-pass-8d1e5c"
    monkeypatch.setenv("DATABASE_URL", fresh_pg.url(password=secret))
    assert main(["verify", "--stack", "dev"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("error: cannot connect: ") and secret not in err

    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres:{secret}@127.0.0.1:notaport/naap")
    assert main(["verify", "--stack", "dev"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and secret not in err

    monkeypatch.delenv("DATABASE_URL")
    assert main(["verify", "--stack", "dev"]) == 2
    no_url = capsys.readouterr().err
    assert no_url.startswith("error: neither DATABASE_URL nor NAAPDB_DATABASE_SECRET_ID")
    assert "the read-only login is enough" in no_url and "--role naap_readonly" in no_url
    assert "migrator" not in no_url and no_url.count("\n") == 1

    monkeypatch.setenv("DATABASE_URL", fresh_pg.url(dbname="postgres"))
    assert main(["verify", "--stack", "dev"]) == 2
    out, err = capsys.readouterr()
    assert err == (
        "error: the connection reached database 'postgres'; the plan is for 'naap': "
        "point DATABASE_URL at it\n"
    )
    assert fresh_pg.password not in err

    monkeypatch.setenv("DATABASE_URL", fresh_pg.url())
    assert main(["verify", "--stack", "nosuchstack"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


# --- as a real process -------------------------------------------------------------


def _run_process(url: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "naapdb", "verify", "--stack", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_as_a_process_the_password_appears_nowhere(dev_db: PgServer) -> None:
    clean = _run_process(dev_db.url())
    assert (clean.returncode, clean.stdout) == (0, ""), clean.stderr
    dev_db.execute("GRANT SELECT ON plugin_wallet.items TO naap_community")
    drift = _run_process(dev_db.url())
    assert drift.returncode == 1, drift.stderr
    assert drift_lines(drift.stdout) == [DRIFTS[0][2]]
    unreachable = _run_process(
        f"postgresql://postgres:{dev_db.password}@127.0.0.1:{free_port()}/naap"
    )
    assert unreachable.returncode == 2
    assert unreachable.stdout == "" and unreachable.stderr.count("\n") == 1
    assert unreachable.stderr.startswith("error: cannot connect: ")
    for result in (clean, drift, unreachable):
        assert dev_db.password not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


# --- one query, whatever the size ------------------------------------------------------


def synthetic_plan(size: int) -> AccessPlan:
    entries: list[dict[str, Any]] = [{"plugin": "base", "schema": "public"}]
    entries += [
        {"plugin": f"p{index:04d}", "schema": f"plugin_p{index:04d}", "reads": ["public"]}
        for index in range(1, size)
    ]
    return build_plan(parse_catalog(entries))


def statements_sent(
    connection: psycopg.Connection[Any], plan: AccessPlan
) -> tuple[int, verify_module.Report]:
    """Runs verify with libpq's protocol trace on, and counts the statements
    really sent (Query and Parse messages), independently of verify's counter."""
    with tempfile.TemporaryFile("w+") as trace:
        connection.pgconn.trace(trace.fileno())
        connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            report = verify_module.verify(connection, plan)
        finally:
            connection.pgconn.untrace()
        trace.seek(0)
        messages = [line.split("\t") for line in trace.read().splitlines()]
    sent = [fields for fields in messages if fields[0] == "F" and fields[2] in ("Query", "Parse")]
    return len(sent), report


def test_query_count_is_constant_from_8_to_200_schemas(fresh_pg: PgServer) -> None:
    connection = fresh_pg.connect()
    counted = {}
    for size in (8, 200):
        plan = synthetic_plan(size)
        apply_plan(fresh_pg, plan)
        started = time.perf_counter()
        sent, report = statements_sent(connection, plan)
        elapsed = time.perf_counter() - started
        assert not report.drift, verify_module.report_to_text(report)
        counted[size] = (report.queries, sent)
        print(
            f"verify {size} schemas: {report.queries} query counted, {sent} sent, {elapsed:.3f} s"
        )
    assert counted[8] == counted[200] == (1, 1)


def test_parse_ignores_nothing_it_reads() -> None:
    """The query's JSON shape and the parser agree (no server needed)."""
    document = {
        "database": "naap",
        "server_version": 160004,
        "database_acl": [["naap_connect", "CONNECT", False]],
        "roles": [
            [
                "naap_app",
                True,
                False,
                False,
                False,
                False,
                False,
                20,
                ["statement_timeout=30000"],
                ["idle_in_transaction_session_timeout=0"],
            ]
        ],
        "memberships": [["naap_app", "public_rw", False, None, None, None]],
        "schemas": [["public", "naap_owner", [["public_rw", "USAGE", False]]]],
        "relations": [["public", "items", "r", "naap_owner", [], False]],
        "columns": [],
        "routines": [["public", "f", "a integer", "p", "naap_owner", [], False]],
        "default_acls": [["naap_owner", None, "f", [["public", "EXECUTE", False]]]],
    }
    live = verify_module.parse_live_state(document)
    assert live.roles["naap_app"].login is True
    assert live.roles["naap_app"].connection_limit == 20
    assert live.roles["naap_app"].settings == ("statement_timeout=30000",)
    assert live.roles["naap_app"].database_settings == ("idle_in_transaction_session_timeout=0",)
    assert live.memberships[0].confers_rights  # before PostgreSQL 16: no options column
    assert [o.keyword for o in live.objects] == ["TABLE", "PROCEDURE"]
    assert live.objects[1].grant_keyword == "PROCEDURE"
    assert live.default_acls[0].schema is None


# --- a fresh database -----------------------------------------------------------


def test_a_fresh_database_is_summarised_first(
    fresh_pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty database `naap` (no `pulumi up` yet) differs in every role,
    membership and grant: the summary comes first, by kind, with the one
    command that creates them; the details follow."""
    code, out, err = run_verify(fresh_pg, monkeypatch, capsys)
    assert code == 1
    lines = out.splitlines()
    details = lines.index("details:")
    summary, rest = lines[:details], lines[details + 1 :]
    total = len(drift_lines(out))
    assert summary[0] == (
        f"summary: {total} differences; the database lacks what `pulumi up --stack dev` creates"
    )
    roles = [role.name for role in DEV_PLAN.roles]
    assert f"- missing role: {len(roles)} ({', '.join(roles[:3])} and {len(roles) - 3} more)" in (
        summary
    )
    counted = sum(int(line.split(": ")[1].split()[0]) for line in summary if line.startswith("- "))
    assert counted == total and len(summary) < 15 < total
    assert summary[-1].startswith("create what is missing: `pulumi up --stack dev`")
    assert rest[0] == "roles" and len(drift_lines("\n".join(rest))) == total
    # Only the logins pulumi up generates a password for are said to get one.
    for role in DEV_PLAN.roles:
        (line,) = [d for d in drift_lines(out) if d.startswith(f"missing role: role {role.name} ")]
        assert ("password" in line) == role.login, line
    assert err.startswith("verify: ") and "`pulumi up --stack dev` creates what is missing" in err


def test_drift_without_missing_objects_has_no_summary(
    dev_db: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev_db.execute("GRANT SELECT ON plugin_wallet.items TO naap_community")
    code, out, err = run_verify(dev_db, monkeypatch, capsys)
    assert code == 1 and not out.startswith("summary") and "details:" not in out
    assert "pulumi up" not in err


def test_verify_reaches_an_rds_stack_only_over_verify_full(
    rotation_ca: tuple[TlsBuild, CaFiles],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 21, gap 3: a DATABASE_URL saying `require` does not lower the
    TLS of an rds stack: the server must prove it holds a certificate of the
    trusted RDS CA. An external or container stack keeps the string's sslmode."""
    _, ca = rotation_ca
    with tls_server(*rotation_ca) as server:
        apply_plan(server, load_stack_settings("prod", ROOT).plan)
        monkeypatch.setenv(
            "DATABASE_URL", server.url().replace("sslmode=disable", "sslmode=require")
        )
        # The committed RDS bundle does not know the test CA: refused.
        monkeypatch.delenv("NAAPDB_SSLROOTCERT")
        assert main(["verify", "--stack", "prod"]) == 2
        assert "certificate verify failed" in capsys.readouterr().err
        # The test CA, trusted out loud (as an RDS CA would be): verify-full holds.
        monkeypatch.setenv("NAAPDB_SSLROOTCERT", str(ca.ca_cert))
        assert main(["verify", "--stack", "prod"]) == 1  # connected: the budget differs
        assert "is not the pinned RDS CA bundle" in capsys.readouterr().err
        # dev's server is a container without TLS: its string is taken as given.
        monkeypatch.setenv("DATABASE_URL", server.url())
        assert main(["verify", "--stack", "dev"]) in (0, 1)

"""`plan --format sql`: the script is composed safely, applies to a fresh
`naap` twice (the second run changes nothing), and leaves exactly the plan's
roles, memberships, schema owners, grants and default privileges."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from naapdb import names
from naapdb.plan import AccessPlan, Rotation, build_plan
from naapdb.sql import DOLLAR_TAG, plan_to_sql
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.pgserver import SUPERUSER, PgServer

ROOT = find_project_root()
CATALOG = load_stack_settings("dev").catalog
PLANS = {rotation.value: build_plan(CATALOG, rotation) for rotation in Rotation}


def test_cli_prints_the_script_with_its_header() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "naapdb", "plan", "--stack", "prod", "--format", "sql"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-- naap-db access plan")
    assert result.stdout == plan_to_sql(load_stack_settings("prod", ROOT).plan)
    statements = [line for line in result.stdout.splitlines() if not line.startswith("--")]
    assert not any("PASSWORD" in line.upper() for line in statements)


@pytest.mark.parametrize("rotation", PLANS)
def test_one_create_per_role_and_every_identifier_quoted(rotation: str) -> None:
    plan = PLANS[rotation]
    script = plan_to_sql(plan)
    for role in plan.roles:
        assert script.count(f'CREATE ROLE "{role.name}";') == 1
        login = "LOGIN" if role.login else "NOLOGIN"
        assert (
            f'ALTER ROLE "{role.name}" WITH {login} NOSUPERUSER NOCREATEDB NOCREATEROLE' in script
        )
    for schema in plan.schemas:
        owner = schema.owner
        assert f'CREATE SCHEMA IF NOT EXISTS "{schema.name}" AUTHORIZATION "{owner}";' in script
    # every DO block closes with the tag it opened
    assert all(line.count(DOLLAR_TAG) in (0, 2) for line in script.splitlines())
    # objects get their rights from the default privileges only: no grant
    # on ALL TABLES/SEQUENCES/FUNCTIONS IN SCHEMA
    assert " ON ALL " not in script
    in_schema = [line for line in script.splitlines() if " IN SCHEMA " in line]
    assert in_schema and all(line.startswith("ALTER DEFAULT PRIVILEGES") for line in in_schema)
    # CONNECT once, to the group; each login identity is a member of it
    on_database = [line for line in script.splitlines() if " ON DATABASE " in line]
    assert on_database == [
        'REVOKE ALL ON DATABASE "naap" FROM PUBLIC;',
        f'GRANT CONNECT ON DATABASE "naap" TO "{names.CONNECT_GROUP}";',
    ]
    for identity in plan.identities:
        assert f'THEN GRANT "{names.CONNECT_GROUP}" TO "{identity}"; END IF;' in script


def _rows(server: PgServer, query: str) -> list[tuple[Any, ...]]:
    with server.connect() as connection:
        return sorted(connection.execute(query).fetchall())  # type: ignore[arg-type]


def catalog_state(server: PgServer) -> dict[str, list[tuple[Any, ...]]]:
    """What the script may touch, as sorted rows: roles and attributes,
    memberships and their options, schema owners and ACLs, the database ACL,
    default ACLs."""
    not_ours = f"rolname !~ '^pg_' AND rolname <> '{SUPERUSER}'"
    return {
        "roles": _rows(
            server,
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
            f" rolbypassrls, rolinherit, rolpassword IS NULL FROM pg_authid WHERE {not_ours}",
        ),
        "memberships": _rows(
            server,
            "SELECT m.rolname, g.rolname, a.admin_option, a.inherit_option, a.set_option"
            " FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid"
            " JOIN pg_roles m ON m.oid = a.member WHERE g.rolname !~ '^pg_'",
        ),
        "schemas": _rows(
            server,
            "SELECT n.nspname, n.nspowner::regrole::text, coalesce(a.grantee::regrole::text, '-'),"
            " coalesce(a.privilege_type, '-'), coalesce(a.is_grantable, false)"
            # The effective ACL: a schema nobody granted on has none stored.
            " FROM pg_namespace n LEFT JOIN LATERAL"
            " aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a ON true"
            " WHERE n.nspname !~ '^(pg_|information_schema)'",
        ),
        "database": _rows(
            server,
            "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_database d,"
            f" aclexplode(d.datacl) a WHERE d.datname = '{names.DATABASE}'",
        ),
        "default_acl": _rows(
            server,
            "SELECT d.defaclrole::regrole::text, d.defaclnamespace::regnamespace::text,"
            " d.defaclobjtype, a.grantee::regrole::text, a.privilege_type"
            " FROM pg_default_acl d, aclexplode(d.defaclacl) a",
        ),
    }


def expected_state(plan: AccessPlan) -> dict[str, set[tuple[Any, ...]]]:
    """The plan as the rows `catalog_state` reads, less the owners' own rights."""
    kind = {"table": "r", "sequence": "S", "function": "f"}
    memberships = {(m.member, m.group) for m in plan.memberships}
    schema_acl = {
        (grant.schema, grant.role, privilege)
        for grant in plan.grants
        if grant.object_type == "schema"
        for privilege in grant.privileges
    }
    defaults = {
        (d.owner, d.schema or "-", kind[d.object_type], d.role, privilege)
        for d in plan.default_privileges
        for privilege in d.privileges
    }
    connect = {
        (grant.role, privilege)
        for grant in plan.grants
        if grant.object_type == "database"
        for privilege in grant.privileges
    }
    return {
        "roles": {(role.name, role.login) for role in plan.roles},
        "memberships": memberships,
        "schemas": {(schema.name, schema.owner) for schema in plan.schemas},
        "schema_acl": schema_acl,
        "database": connect,
        "default_acl": defaults,
    }


def assert_matches_plan(state: dict[str, list[tuple[Any, ...]]], plan: AccessPlan) -> None:
    expected = expected_state(plan)
    assert {(row[0], row[1]) for row in state["roles"]} == expected["roles"]
    # nobody may do more than the plan says, and no role has a password yet
    assert all(row[2:8] == (False, False, False, False, False, True) for row in state["roles"])
    assert all(row[8] for row in state["roles"])
    assert {(row[0], row[1]) for row in state["memberships"]} == expected["memberships"]
    # no admin option anywhere; memberships inherit
    assert all(row[2:4] == (False, True) for row in state["memberships"])
    assert {(row[0], row[1]) for row in state["schemas"]} == expected["schemas"]
    owners = {row[0]: row[1] for row in state["schemas"]}
    schema_acl = {(row[0], row[2], row[3]) for row in state["schemas"] if row[2] != owners[row[0]]}
    # PUBLIC (grantee 0, shown as "-") holds nothing on any schema
    assert schema_acl == expected["schema_acl"]
    assert not any(row[4] for row in state["schemas"])
    assert {row for row in state["database"] if row[0] != SUPERUSER} == expected["database"]
    default_acl = {row for row in state["default_acl"] if row[3] != row[0]}
    assert default_acl == expected["default_acl"]
    # naap_owner's functions: a default ACL exists and PUBLIC ("-") is not in it
    assert (names.OWNER, "-", "f", names.OWNER, "EXECUTE") in set(state["default_acl"])


@pytest.mark.db
@pytest.mark.parametrize("rotation", PLANS)
def test_script_applies_twice_and_leaves_exactly_the_plan(
    fresh_pg: PgServer, rotation: str
) -> None:
    plan = PLANS[rotation]
    script = plan_to_sql(plan)
    fresh_pg.execute(script)
    first = catalog_state(fresh_pg)
    assert_matches_plan(first, plan)
    # the database's ACL holds one grant besides its owner's: the group's CONNECT
    assert [row for row in first["database"] if row[0] != SUPERUSER] == [
        (names.CONNECT_GROUP, "CONNECT")
    ]
    fresh_pg.execute(script)
    assert catalog_state(fresh_pg) == first


@pytest.mark.db
def test_script_refuses_another_database(fresh_pg: PgServer) -> None:
    import psycopg

    with pytest.raises(psycopg.errors.RaiseException, match="connect to database naap"):
        fresh_pg.execute(plan_to_sql(PLANS["single"]), dbname="postgres")
    assert _rows(fresh_pg, "SELECT rolname FROM pg_roles WHERE rolname = 'naap_owner'") == []

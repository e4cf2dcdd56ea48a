"""The access plan of the default catalogue, derived as DESIGN.md says."""

from __future__ import annotations

import json
import subprocess
import sys

from naapdb import names
from naapdb.catalog import parse_catalog
from naapdb.plan import (
    RO_PRIVILEGES,
    RW_PRIVILEGES,
    DefaultPrivilege,
    Grant,
    Membership,
    Revocation,
    Rotation,
    build_plan,
)
from naapdb.stackfiles import find_project_root, load_stack_settings

ROOT = find_project_root()
CATALOG = load_stack_settings("dev").catalog
PLUGIN_SCHEMAS = CATALOG.schemas


def test_roles_of_the_default_catalogue() -> None:
    plan = build_plan(CATALOG)
    logins = {role.name for role in plan.roles if role.login}
    assert logins == {
        "naap_migrator",
        "naap_app",
        "naap_readonly",
        *(f"naap_{entry.plugin}" for entry in CATALOG.plugins),
    }
    groups = {role.name for role in plan.roles if not role.login}
    assert groups == {names.OWNER} | {
        f"{s}_{kind}" for s in PLUGIN_SCHEMAS for kind in ("rw", "ro")
    }


def test_memberships() -> None:
    plan = build_plan(CATALOG)
    memberships = set(plan.memberships)
    assert Membership("naap_migrator", "naap_owner") in memberships
    assert Membership("naap_community", "plugin_community_rw") in memberships
    assert Membership("naap_community", "public_ro") in memberships
    assert Membership("naap_base", "public_rw") in memberships
    assert {m.group for m in memberships if m.member == "naap_app"} == {
        f"{s}_rw" for s in PLUGIN_SCHEMAS
    }
    assert {m.group for m in memberships if m.member == "naap_readonly"} == {
        f"{s}_ro" for s in PLUGIN_SCHEMAS
    }
    # nobody but the migrator may act as the owner
    assert [m.member for m in memberships if m.group == names.OWNER] == ["naap_migrator"]


def test_grants_per_schema() -> None:
    plan = build_plan(CATALOG)
    for schema in PLUGIN_SCHEMAS:
        grants = set(plan.grants_in(schema))
        rw, ro = f"{schema}_rw", f"{schema}_ro"
        expected = {
            Grant(rw, "schema", ("USAGE",), schema),
            Grant(ro, "schema", ("USAGE",), schema),
        }
        expected |= {Grant(rw, t, p, schema) for t, p in RW_PRIVILEGES.items()}
        expected |= {Grant(ro, t, p, schema) for t, p in RO_PRIVILEGES.items()}
        assert grants == expected
    assert not list(plan.grants_in(names.META_SCHEMA))


def test_connect_only_for_login_identities() -> None:
    plan = build_plan(CATALOG)
    connect = {g.role for g in plan.grants if g.object_type == "database"}
    assert connect == set(plan.identities)
    assert all(g.privileges == ("CONNECT",) for g in plan.grants if g.object_type == "database")


def test_default_privileges_for_owner_in_every_schema() -> None:
    plan = build_plan(CATALOG)
    defaults = set(plan.default_privileges)
    assert DefaultPrivilege("public", "function", ()) in defaults
    for schema in PLUGIN_SCHEMAS:
        for object_type, privileges in RW_PRIVILEGES.items():
            assert DefaultPrivilege(f"{schema}_rw", object_type, privileges, schema) in defaults
        for object_type, privileges in RO_PRIVILEGES.items():
            assert DefaultPrivilege(f"{schema}_ro", object_type, privileges, schema) in defaults
    assert all(d.owner == names.OWNER for d in defaults)


def test_public_loses_everything() -> None:
    plan = build_plan(CATALOG)
    assert set(plan.revocations) == {
        Revocation("database"),
        *(Revocation("schema", s) for s in (*PLUGIN_SCHEMAS, names.META_SCHEMA)),
    }


def test_every_schema_owned_by_naap_owner_including_meta() -> None:
    plan = build_plan(CATALOG)
    assert [s.name for s in plan.schemas] == [*PLUGIN_SCHEMAS, names.META_SCHEMA]
    assert {s.owner for s in plan.schemas} == {names.OWNER}


def test_alternating_rotation_splits_each_identity_into_two_logins() -> None:
    single = build_plan(CATALOG, Rotation.SINGLE)
    alternating = build_plan(CATALOG, Rotation.ALTERNATING)
    assert alternating.identities == single.identities
    for identity in alternating.identities:
        assert not alternating.role(identity).login
        for login in (f"{identity}_a", f"{identity}_b"):
            assert alternating.role(login).login
            assert Membership(login, identity) in alternating.memberships
    # the identities keep every membership and grant they had
    assert set(single.memberships) <= set(alternating.memberships)
    assert single.grants == alternating.grants
    assert len(alternating.login_roles) == 2 * len(single.login_roles)


def test_plan_is_deterministic() -> None:
    raw = [
        {"plugin": e.plugin, "schema": e.schema, "reads": list(e.reads)} for e in CATALOG.plugins
    ]
    assert build_plan(parse_catalog(raw)) == build_plan(parse_catalog(raw))


def test_cli_json_lists_everything_for_dev_and_prod() -> None:
    for stack, rotation in (("dev", "single"), ("prod", "alternating")):
        result = subprocess.run(
            [sys.executable, "-m", "naapdb", "plan", "--stack", stack, "--format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        document = json.loads(result.stdout)
        assert document["rotation"] == rotation
        assert [s["name"] for s in document["schemas"]] == [*PLUGIN_SCHEMAS, "naap_meta"]
        role_names = {r["name"] for r in document["roles"]}
        for expected in (
            "naap_owner",
            "naap_migrator",
            "naap_app",
            "naap_readonly",
            "naap_community",
        ):
            assert expected in role_names
        assert {
            "role": "plugin_wallet_rw",
            "object_type": "table",
            "schema": "plugin_wallet",
            "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
        } in document["grants"]
        # byte-identical on a second run: stable for diffs in review
        again = subprocess.run(
            [sys.executable, "-m", "naapdb", "plan", "--stack", stack, "--format", "json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert again.stdout == result.stdout


def test_cli_text_has_a_table_per_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "naapdb", "plan", "--stack", "dev"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for schema in PLUGIN_SCHEMAS:
        assert f"schema {schema}  (plugin " in result.stdout
    assert "naap_meta  (platform" in result.stdout

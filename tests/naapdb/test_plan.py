"""The access plan of the default catalogue, derived as DESIGN.md says."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

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
        *(f"{schema}_migrator" for schema in PLUGIN_SCHEMAS),
    }
    groups = {role.name for role in plan.roles if not role.login}
    assert groups == {names.OWNER, names.CONNECT_GROUP, names.RECORDER_GROUP} | {
        f"{s}_{kind}" for s in PLUGIN_SCHEMAS for kind in ("owner", "rw", "ro")
    }
    # the identities read first, each schema's push login after them
    assert [role.name for role in plan.login_roles][:3] == [
        "naap_migrator",
        "naap_base",
        "naap_community",
    ]


def test_each_schema_has_its_own_owner_and_push_login_reaching_no_other() -> None:
    """The owner is a member of its reads' `_ro` only; the push login of its owner, the
    connect group and the recorder group, and of nothing else; nobody else is
    a member of an owner (outside prisma mode) or of a push login."""
    plan = build_plan(CATALOG)
    for schema in plan.schemas[:-1]:
        owner, login = f"{schema.name}_owner", f"{schema.name}_migrator"
        assert (schema.owner, schema.migrator) == (owner, login)
        assert not plan.role(owner).login and plan.role(login).login
        # its plugin's reads, so its migrations may reference those tables
        reads = CATALOG.entry_of(schema.name).reads  # type: ignore[union-attr]
        assert [m.group for m in plan.memberships if m.member == owner] == [
            f"{read}_ro" for read in reads
        ]
        assert {m.group for m in plan.memberships if m.member == login} == {
            names.CONNECT_GROUP,
            owner,
            names.RECORDER_GROUP,
        }
        assert [m.member for m in plan.memberships if m.group in (owner, login)] == [login]
        limits = plan.role(login).limits
        assert limits is not None and limits.connections == 1
    assert {m.member for m in plan.memberships if m.group == names.RECORDER_GROUP} == {
        f"{schema}_migrator" for schema in PLUGIN_SCHEMAS
    }


def test_prisma_mode_makes_naap_owner_a_member_of_every_owner() -> None:
    """One `prisma db push` creates every schema's objects as naap_owner."""
    plan = build_plan(CATALOG, prisma=True)
    assert {m.group for m in plan.memberships if m.member == names.OWNER} == {
        f"{schema}_owner" for schema in PLUGIN_SCHEMAS
    }
    assert set(build_plan(CATALOG).memberships) < set(plan.memberships)


def test_memberships() -> None:
    plan = build_plan(CATALOG)
    memberships = set(plan.memberships)
    assert Membership("naap_migrator", "naap_owner") in memberships
    assert Membership("naap_community", "plugin_community_rw") in memberships
    assert Membership("naap_community", "public_ro") in memberships
    assert Membership("naap_base", "public_rw") in memberships
    assert {m.group for m in memberships if m.member == "naap_app"} == {
        names.CONNECT_GROUP,
        *(f"{s}_rw" for s in PLUGIN_SCHEMAS),
    }
    assert {m.group for m in memberships if m.member == "naap_readonly"} == {
        names.CONNECT_GROUP,
        *(f"{s}_ro" for s in PLUGIN_SCHEMAS),
    }
    # nobody but the migrator may act as naap_owner, which owns naap_meta alone
    assert [m.member for m in memberships if m.group == names.OWNER] == ["naap_migrator"]
    assert [s.name for s in plan.schemas if s.owner == names.OWNER] == [names.META_SCHEMA]


def test_grants_per_schema() -> None:
    """USAGE on the schema only: no grant on ALL TABLES/SEQUENCES/FUNCTIONS
    IN SCHEMA (the objects' rights come from the default privileges)."""
    plan = build_plan(CATALOG)
    for schema in PLUGIN_SCHEMAS:
        grants = set(plan.grants_in(schema))
        rw, ro = f"{schema}_rw", f"{schema}_ro"
        assert grants == {
            Grant(rw, "schema", ("USAGE",), schema),
            Grant(ro, "schema", ("USAGE",), schema),
        }
    # naap_meta: the push logins reach the recorder, naap_readonly the ledger
    assert set(plan.grants_in(names.META_SCHEMA)) == {
        Grant(names.RECORDER_GROUP, "schema", ("USAGE",), names.META_SCHEMA),
        Grant(names.READONLY, "schema", ("USAGE",), names.META_SCHEMA),
    }
    assert {grant.object_type for grant in plan.grants} == {"database", "schema"}


def test_object_privileges_are_what_the_default_privileges_give() -> None:
    plan = build_plan(CATALOG)
    for schema in PLUGIN_SCHEMAS:
        rw, ro = f"{schema}_rw", f"{schema}_ro"
        expected = {(rw, t): p for t, p in RW_PRIVILEGES.items()}
        expected |= {(ro, t): p for t, p in RO_PRIVILEGES.items()}
        assert plan.object_privileges(schema) == expected
        # derived from the defaults: each one is a DefaultPrivilege of the plan
        for (role, object_type), privileges in expected.items():
            owner = f"{schema}_owner"
            assert DefaultPrivilege(role, object_type, privileges, schema, owner) in set(
                plan.default_privileges
            )
    assert plan.object_privileges(names.META_SCHEMA) == {
        (names.RECORDER_GROUP, "function"): ("EXECUTE",),
        (names.READONLY, "table"): ("SELECT",),
    }
    # PUBLIC's EXECUTE is revoked (empty privileges): no right for anyone
    assert not any(role == "public" for role, _ in plan.object_privileges("public"))


def test_object_privileges_follow_the_defaults_not_a_table() -> None:
    """A default privilege missing from the plan is missing from the
    object rights too: they are derived, not a copy of RW/RO_PRIVILEGES."""
    plan = build_plan(CATALOG)
    trimmed = replace(
        plan,
        default_privileges=tuple(
            d
            for d in plan.default_privileges
            if (d.schema, d.object_type) != ("public", "function")
        ),
        _by_name={},
        _object_rights={},
    )
    assert ("public_rw", "function") not in trimmed.object_privileges("public")
    assert ("plugin_wallet_rw", "function") in trimmed.object_privileges("plugin_wallet")


@pytest.mark.parametrize("rotation", list(Rotation), ids=[r.value for r in Rotation])
def test_connect_is_one_grant_to_a_group_of_the_login_identities(rotation: Rotation) -> None:
    """CONNECT on the database is granted once, to the NOLOGIN group
    naap_connect, whatever the catalogue's size; each login identity (and
    nothing else) is a member, so under alternating rotation `_a`/`_b`
    connect through their identity."""
    plan = build_plan(CATALOG, rotation)
    connect = Grant(names.CONNECT_GROUP, "database", ("CONNECT",))
    assert plan.database_grants == (connect,)
    assert [g for g in plan.grants if g.object_type == "database"] == [connect]
    group = plan.role(names.CONNECT_GROUP)
    assert not group.login and group.schema is None and group.purpose == "connect"
    members = [m.member for m in plan.memberships if m.group == names.CONNECT_GROUP]
    push_logins = [f"{schema}_migrator" for schema in PLUGIN_SCHEMAS]
    assert members == [*plan.identities, *push_logins]
    assert {m.member for m in plan.memberships if m.group == names.CONNECT_GROUP} == {
        names.MIGRATOR,
        names.APP,
        names.READONLY,
        *(names.plugin_login(entry.plugin) for entry in CATALOG.plugins),
        *push_logins,
    }
    # naap_connect is a member of nothing: it confers CONNECT and no other right
    assert not [m for m in plan.memberships if m.member == names.CONNECT_GROUP]
    for login in plan.login_roles:
        identity = login.identity or login.name
        assert Membership(identity, names.CONNECT_GROUP) in plan.memberships


def test_connect_does_not_grow_with_the_catalogue() -> None:
    small = parse_catalog([{"plugin": "base", "schema": "public"}])
    large = parse_catalog(
        [
            {"plugin": "base", "schema": "public"},
            *(
                {"plugin": f"p{i}", "schema": f"plugin_p{i}", "reads": ["public"]}
                for i in range(50)
            ),
        ]
    )
    for rotation in Rotation:
        assert build_plan(small, rotation).database_grants == (
            build_plan(large, rotation).database_grants
        )


def test_default_privileges_for_owner_in_every_schema() -> None:
    plan = build_plan(CATALOG)
    defaults = set(plan.default_privileges)
    assert DefaultPrivilege("public", "function", ()) in defaults
    for schema in PLUGIN_SCHEMAS:
        owner = f"{schema}_owner"
        # PUBLIC's EXECUTE on what each owner creates is revoked too
        assert DefaultPrivilege("public", "function", (), None, owner) in defaults
        for object_type, privileges in RW_PRIVILEGES.items():
            rw = DefaultPrivilege(f"{schema}_rw", object_type, privileges, schema, owner)
            assert rw in defaults
        for object_type, privileges in RO_PRIVILEGES.items():
            ro = DefaultPrivilege(f"{schema}_ro", object_type, privileges, schema, owner)
            assert ro in defaults
    assert {d.owner for d in defaults if d.schema in (None, names.META_SCHEMA)} == {
        names.OWNER,
        *(f"{schema}_owner" for schema in PLUGIN_SCHEMAS),
    }
    assert all(d.owner == f"{d.schema}_owner" for d in defaults if d.schema in PLUGIN_SCHEMAS)


def test_public_loses_what_postgresql_gives_it() -> None:
    """CONNECT and TEMPORARY on the database and USAGE on `public` are
    PostgreSQL's own gifts to PUBLIC; a schema made by CREATE SCHEMA gives
    it nothing, so nothing is revoked there (tests/naapdb/test_sql.py reads
    the effective ACLs on a real server: PUBLIC holds nothing anywhere)."""
    plan = build_plan(CATALOG)
    assert set(plan.revocations) == {Revocation("database"), Revocation("schema", names.PUBLIC)}


def test_every_schema_owned_by_its_own_owner_and_meta_by_naap_owner() -> None:
    plan = build_plan(CATALOG)
    assert [s.name for s in plan.schemas] == [*PLUGIN_SCHEMAS, names.META_SCHEMA]
    assert [s.owner for s in plan.schemas] == [
        *(f"{schema}_owner" for schema in PLUGIN_SCHEMAS),
        names.OWNER,
    ]


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
    # each identity's login doubles; a schema's push login stays one login
    push_logins = len(PLUGIN_SCHEMAS)
    assert len(alternating.login_roles) - push_logins == 2 * (len(single.login_roles) - push_logins)
    for schema in PLUGIN_SCHEMAS:
        assert alternating.role(f"{schema}_migrator") == single.role(f"{schema}_migrator")


def test_only_the_first_login_of_each_identity_gets_a_generated_password() -> None:
    single = build_plan(CATALOG, Rotation.SINGLE)
    alternating = build_plan(CATALOG, Rotation.ALTERNATING)
    # every login but the schemas' push logins (their passwords derive from the push key)
    assert single.first_logins == tuple(
        role for role in single.login_roles if role.purpose != "schema-migrator"
    )
    assert [role.name for role in alternating.first_logins] == [
        f"{identity}_a" for identity in alternating.identities
    ]
    assert all(role.login and role.identity for role in alternating.first_logins)


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
            "object_type": "schema",
            "schema": "plugin_wallet",
            "privileges": ["USAGE"],
        } in document["grants"]
        assert {
            "role": "plugin_wallet_rw",
            "object_type": "table",
            "schema": "plugin_wallet",
            "owner": "plugin_wallet_owner",
            "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"],
        } in document["default_privileges"]
        assert {g["object_type"] for g in document["grants"]} == {"database", "schema"}
        assert [g for g in document["grants"] if g["object_type"] == "database"] == [
            {
                "role": names.CONNECT_GROUP,
                "object_type": "database",
                "privileges": ["CONNECT"],
                "schema": None,
            }
        ]
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
    # who may do what on the objects: from the default privileges
    section = result.stdout.split("schema plugin_wallet  (")[1].split("\n\n")[0].splitlines()
    rows = [line.split(None, 2) for line in section[1:] if "members:" not in line]
    assert rows == [
        ["plugin_wallet_rw", "schema", "USAGE"],
        ["plugin_wallet_rw", "table", "SELECT, INSERT, UPDATE, DELETE"],
        ["plugin_wallet_rw", "sequence", "USAGE, SELECT, UPDATE"],
        ["plugin_wallet_rw", "function", "EXECUTE"],
        ["plugin_wallet_ro", "schema", "USAGE"],
        ["plugin_wallet_ro", "table", "SELECT, REFERENCES"],
        ["plugin_wallet_ro", "sequence", "SELECT"],
    ]
    meta = result.stdout.split("schema naap_meta  (")[1].split("\n\n")[0].splitlines()
    assert meta[0] == "platform, owner naap_owner)"
    assert [line.split(None, 2) for line in meta[1:]] == [
        ["naap_recorder", "schema", "USAGE"],
        ["naap_recorder", "function", "EXECUTE"],
        ["naap_readonly", "schema", "USAGE"],
        ["naap_readonly", "table", "SELECT"],
        ["naap_owner", "members:", "naap_migrator"],
    ]
    plan = load_stack_settings("dev").plan
    members = len(plan.identities) + len(PLUGIN_SCHEMAS)  # and each schema's push login
    assert (
        f"database naap: CONNECT to naap_connect ({members} members); PUBLIC revoked"
        in result.stdout.splitlines()
    )

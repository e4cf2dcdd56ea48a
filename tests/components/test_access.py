"""The access layer under mocks, with the real dev and prod stack files:
the declared pulumi-postgresql resources and the access plan, one to one
(memberships: one entry of the member Role's `roles` each), through the
server's provider, with the data-safety options of each stack, and what
removing a plugin from the catalogue declares."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb import names, pushkey, scram
from naapdb.catalog import parse_catalog
from naapdb.plan import AccessPlan, build_plan
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Resource, Run
from tests.pgserver import PgServer

ROLE = "postgresql:index/role:Role"
SCHEMA = "postgresql:index/schema:Schema"
GRANT = "postgresql:index/grant:Grant"
GRANT_ROLE = "postgresql:index/grantRole:GrantRole"  # must not exist: memberships are `roles`
DEFAULT = "postgresql:index/defaultPrivileges:DefaultPrivileges"
PROVIDER = "pulumi:providers:postgresql"
PASSWORD = "random:index/randomPassword:RandomPassword"
ACCESS = "naap:database:DatabaseAccess"
SCHEMA_ACCESS = "naap:database:SchemaAccess"
ACCESS_NAME = "naap-access"
PRIVILEGE_TYPES = (GRANT, DEFAULT)
DENIED_ATTRIBUTES = (
    "superuser",
    "createRole",
    "createDatabase",
    "bypassRowLevelSecurity",
    "replication",
)
REMOVED_PLUGIN = "wallet"

STACKS = ("dev", "prod")
PLANS = {stack: load_stack_settings(stack, ROOT).plan for stack in STACKS}
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
CATALOGUE: list[dict[str, Any]] = PROJECT["config"]["naap-db:plugins"]["value"]


@pytest.fixture(scope="module")
def runs(lambda_zip: Path) -> dict[str, Run]:
    return {
        stack: harness.run_program(stack, harness.stack_overrides(stack, lambda_zip))
        for stack in STACKS
    }


def postgresql_resources(run: Run) -> list[Resource]:
    return [r for r in run.resources if r.type.startswith("postgresql:")]


def key(resource: Resource) -> tuple[Any, ...]:
    """What a resource does, in the plan's terms."""
    inputs = resource.inputs
    if resource.type == ROLE:
        return ("role", inputs["name"], bool(inputs.get("login")))
    if resource.type == SCHEMA:
        return ("schema", inputs["name"], inputs["owner"])
    if resource.type == GRANT:
        privileges = frozenset(inputs["privileges"])
        return ("grant", inputs["role"], inputs["objectType"], inputs.get("schema"), privileges)
    if resource.type == DEFAULT:
        return (
            "default",
            inputs["owner"],
            inputs["role"],
            inputs.get("schema"),
            inputs["objectType"],
            frozenset(inputs["privileges"]),
        )
    return ("not in the plan", resource.type, resource.name)


def membership_keys(run: Run) -> Iterator[tuple[str, str, str]]:
    """One key per entry of a Role's `roles`: the memberships declared."""
    for role in run.of_type(ROLE):
        for group in role.inputs.get("roles") or []:
            yield ("membership", role.inputs["name"], group)


def plan_keys(plan: AccessPlan) -> Iterator[tuple[Any, ...]]:
    """Every plan item that is a resource of its own (memberships are not)."""
    for role in plan.roles:
        yield ("role", role.name, role.login)
    for schema in plan.schemas:
        yield ("schema", schema.name, schema.owner)
    for grant in plan.grants:
        yield ("grant", grant.role, grant.object_type, grant.schema, frozenset(grant.privileges))
    for revocation in plan.revocations:
        yield ("grant", revocation.role, revocation.object_type, revocation.schema, frozenset())
    for default in plan.default_privileges:
        privileges = frozenset(default.privileges)
        yield (
            "default",
            default.owner,
            default.role,
            default.schema,
            default.object_type,
            privileges,
        )


def schema_access(run: Run, schema: str) -> Resource:
    return run.named(f"{ACCESS_NAME}-{schema}")


def children(run: Run, parent: Resource) -> list[Resource]:
    return [r for r in run.resources if r.parent == parent.urn]


@pytest.mark.parametrize("stack", STACKS)
def test_one_resource_per_plan_item(runs: dict[str, Run], stack: str) -> None:
    plan = PLANS[stack]
    declared = Counter(key(r) for r in postgresql_resources(runs[stack]))
    planned = Counter(plan_keys(plan))
    assert max(planned.values()) == 1
    assert declared == planned
    for resource in postgresql_resources(runs[stack]):
        if resource.type in (SCHEMA, GRANT, DEFAULT):
            assert resource.inputs["database"] == plan.database
    # Objects get their rights from the default privileges only: no grant
    # on ALL TABLES/SEQUENCES/FUNCTIONS IN SCHEMA.
    grants_on = {r.inputs["objectType"] for r in runs[stack].of_type(GRANT)}
    assert grants_on == {"database", "schema"}
    assert not any("objects" in r.inputs for r in runs[stack].of_type(GRANT))


@pytest.mark.parametrize("stack", STACKS)
def test_each_membership_is_one_entry_of_its_members_roles(
    runs: dict[str, Run], stack: str
) -> None:
    """Every plan membership is exactly one entry of the member Role's
    `roles`, each Role's `roles` are exactly the plan's memberships of that
    member, and no GrantRole exists (it would not see hand-made memberships)."""
    run, plan = runs[stack], PLANS[stack]
    assert not run.of_type(GRANT_ROLE)
    planned = Counter(("membership", m.member, m.group) for m in plan.memberships)
    assert max(planned.values()) == 1
    assert Counter(membership_keys(run)) == planned
    groups_of: dict[str, list[str]] = {}
    for membership in plan.memberships:
        groups_of.setdefault(membership.member, []).append(membership.group)
    for role in run.of_type(ROLE):
        name = role.inputs["name"]
        assert (role.inputs.get("roles") or []) == groups_of.get(name, []), name


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_goes_through_the_servers_provider(runs: dict[str, Run], stack: str) -> None:
    run = runs[stack]
    provider = run.one(PROVIDER)
    assert "naap:database:DatabaseServer" in provider.urn
    assert all(r.provider_urn == provider.urn for r in postgresql_resources(run))


def test_one_schema_access_per_schema_holding_what_the_schema_brings(runs: dict[str, Run]) -> None:
    run, plan = runs["dev"], PLANS["dev"]
    access = run.one(ACCESS)
    components = run.of_type(SCHEMA_ACCESS)
    assert sorted(c.name for c in components) == sorted(
        f"{ACCESS_NAME}-{schema.name}" for schema in plan.schemas
    )
    for schema in plan.schemas:
        component = schema_access(run, schema.name)
        assert component.parent == access.urn
        mine = children(run, component)
        assert all(child.name.startswith(component.name + "-") for child in mine)
        assert [key(r) for r in mine if r.type == SCHEMA] == [("schema", schema.name, schema.owner)]
        # its owner, groups and push login (naap_meta: none, naap_owner is the database's)
        own = {role for role in (schema.rw_role, schema.ro_role, schema.migrator) if role}
        if schema.migrator:
            own.add(schema.owner)
        assert {r.inputs["name"] for r in mine if r.type == ROLE} == own
        # owner and groups are members of nothing; memberships into them are
        # the `roles` of their members; the push login's are its own
        # (the owner's: the `_ro` groups of the schemas its plugin reads)
        reads = [e.get("reads", []) for e in CATALOGUE if e["schema"] == schema.name]
        assert [r.inputs["name"] for r in mine if r.type == ROLE and r.inputs.get("roles")] == (
            ([schema.owner] if reads and reads[0] else []) + [schema.migrator]
            if schema.migrator
            else []
        )
        # privileges on its own schema only, and (schema None) the revocation
        # of PUBLIC's EXECUTE on what its owner creates anywhere
        assert {r.inputs.get("schema") for r in mine if r.type in PRIVILEGE_TYPES} <= {
            schema.name,
            None,
        }
    for resource in postgresql_resources(run):
        assert run.by_urn(resource.parent).type in (ACCESS, SCHEMA_ACCESS)
        assert resource.name.startswith(ACCESS_NAME + "-")


@pytest.mark.parametrize("stack", STACKS)
def test_schemas_are_retained_and_never_dropped_with_their_tables(
    runs: dict[str, Run], stack: str
) -> None:
    schemas = runs[stack].of_type(SCHEMA)
    assert len(schemas) == len(PLANS[stack].schemas)
    for schema in schemas:
        assert schema.retain_on_delete
        assert schema.inputs["dropCascade"] is False
        assert schema.inputs["ifNotExists"] is True


def test_production_protects_schemas_and_roles(runs: dict[str, Run]) -> None:
    assert not any(r.protect for r in postgresql_resources(runs["dev"]))
    prod = postgresql_resources(runs["prod"])
    assert all(r.protect for r in prod if r.type in (SCHEMA, ROLE))
    # grants and memberships follow the catalogue without a manual unprotect
    assert not any(r.protect for r in prod if r.type not in (SCHEMA, ROLE))


@pytest.mark.parametrize("stack", STACKS)
def test_login_roles_get_their_generated_password_as_a_secret(
    runs: dict[str, Run], stack: str
) -> None:
    run, plan = runs[stack], PLANS[stack]
    generated = {
        r.inputs["keepers"]["role"]: r
        for r in run.of_type(PASSWORD)
        if "naap:database:Credentials" in r.parent
    }
    first_logins = {role.name for role in plan.first_logins}
    # and the push key, from which each schema's push login's password derives
    assert set(generated) == first_logins | {"push_key"}
    push_logins = {role.name for role in plan.roles if role.purpose == "schema-migrator"}
    for resource in run.of_type(ROLE):
        role = plan.role(resource.inputs["name"])
        if role.name in push_logins:
            key = generated["push_key"].state["result"]
            password = pushkey.login_password(key, role.name)
            assert resource.is_secret("password")
            assert resource.inputs["password"] == scram.verifier(password, role.name)
            assert generated["push_key"].urn in run.waits_for(resource)
            continue
        if role.name not in first_logins:
            # a group, an alternating identity, or its idle `_b` login, which
            # gets a password from the first rotation only
            assert "password" not in resource.inputs
            continue
        assert role.login
        assert resource.is_secret("password")
        password = generated[role.name]
        # The SCRAM verifier of the generated password, never the password:
        # the provider sends it in plain SQL (docs/access.md).
        assert resource.inputs["password"] == scram.verifier(password.state["result"], role.name)
        assert password.urn in resource.dependencies


def test_under_alternating_rotation_only_the_a_login_gets_a_password(
    runs: dict[str, Run],
) -> None:
    plan = PLANS["prod"]
    roles = {r.inputs["name"]: r for r in runs["prod"].of_type(ROLE)}
    for identity in plan.identities:
        first, second = plan.logins_of(identity)
        assert (first, second) == (f"{identity}_a", f"{identity}_b")
        assert roles[first].inputs["login"] is True and roles[first].is_secret("password")
        assert roles[second].inputs["login"] is True and "password" not in roles[second].inputs


def test_rotation_owns_login_passwords_after_creation_in_prod(runs: dict[str, Run]) -> None:
    assert all(r.ignore_changes == [] for r in runs["dev"].of_type(ROLE))
    prod = PLANS["prod"]
    for resource in runs["prod"].of_type(ROLE):
        role = prod.role(resource.inputs["name"])
        # an identity's logins; a schema's push login is Pulumi's to set
        assert resource.ignore_changes == (["password"] if role.login and role.identity else [])


def test_nothing_needs_a_superuser_in_prod(runs: dict[str, Run]) -> None:
    """RDS's admin is CREATEROLE, not superuser: the provider is told so, no
    role asks for what only a superuser may grant, and no resource type
    needs more than a CREATEROLE database owner."""
    run = runs["prod"]
    assert str(run.one(PROVIDER).inputs["superuser"]).lower() == "false"
    assert {r.type for r in postgresql_resources(run)} <= {ROLE, SCHEMA, GRANT, DEFAULT}
    for role in run.of_type(ROLE):
        assert all(role.inputs[attribute] is False for attribute in DENIED_ATTRIBUTES), role.name
    owner = run.one(ROLE, f"-role-{names.OWNER}")
    assert owner.inputs["login"] is False
    # only naap_migrator is a member of naap_owner (its `_a`/`_b` through it)
    assert [
        r.inputs["name"] for r in run.of_type(ROLE) if names.OWNER in (r.inputs.get("roles") or [])
    ] == [names.MIGRATOR]
    assert not any(
        r.inputs.get("withGrantOption") for r in run.resources if r.type in PRIVILEGE_TYPES
    )


@pytest.mark.parametrize("stack", STACKS)
def test_public_is_taken_over_before_any_privilege_on_it(runs: dict[str, Run], stack: str) -> None:
    run = runs[stack]
    public = run.one(SCHEMA, f"-{names.PUBLIC}-schema")
    assert public.inputs["owner"] == names.schema_owner(names.PUBLIC)
    on_public = [
        r
        for r in run.resources
        if r.type in PRIVILEGE_TYPES and r.inputs.get("schema") == names.PUBLIC
    ]
    assert on_public
    assert all(public.urn in run.waits_for(r) for r in on_public)


@pytest.mark.parametrize("stack", STACKS)
def test_privileges_on_one_object_never_run_in_parallel(runs: dict[str, Run], stack: str) -> None:
    """GRANTs on one catalogue row at once fail with "tuple concurrently
    updated": those of a schema, and those on the database, form a chain."""
    run = runs[stack]
    by_target: dict[str | None, list[Resource]] = {}
    for resource in run.resources:
        if resource.type in PRIVILEGE_TYPES and resource.inputs["objectType"] == "database":
            by_target.setdefault(None, []).append(resource)
        elif resource.type in PRIVILEGE_TYPES and resource.inputs.get("schema"):
            by_target.setdefault(resource.inputs["schema"], []).append(resource)
    assert set(by_target) == {None} | {g.schema for g in PLANS[stack].grants if g.schema}
    for resources in by_target.values():
        ordered = sorted(resources, key=lambda r: len(run.waits_for(r)))
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.urn in run.waits_for(later), (earlier.name, later.name)


@pytest.mark.parametrize("stack", STACKS)
def test_connect_is_one_grant_to_naap_connect_and_a_membership_of_each_identity(
    runs: dict[str, Run], stack: str
) -> None:
    """The database row gets two privilege resources whatever the catalogue:
    PUBLIC's revocation, then CONNECT for `naap_connect`. Each identity's
    Role lists `naap_connect` in `roles` (so the provider reads the
    membership back and takes a hand-made one away); `_a`/`_b` reach it
    through their identity."""
    run, plan = runs[stack], PLANS[stack]
    on_database = [r for r in run.of_type(GRANT) if r.inputs["objectType"] == "database"]
    assert sorted(key(r) for r in on_database) == sorted(
        [
            ("grant", "public", "database", None, frozenset()),
            ("grant", names.CONNECT_GROUP, "database", None, frozenset({"CONNECT"})),
        ]
    )
    (connect,) = [r for r in on_database if r.inputs["role"] == names.CONNECT_GROUP]
    (revocation,) = [r for r in on_database if r.inputs["role"] == "public"]
    roles = {r.inputs["name"]: r for r in run.of_type(ROLE)}
    group = roles[names.CONNECT_GROUP]
    assert group.inputs["login"] is False and not group.inputs.get("roles")
    assert group.parent == run.one(ACCESS).urn
    assert revocation.urn in connect.dependencies and group.urn in connect.dependencies
    members = {
        name for name, r in roles.items() if names.CONNECT_GROUP in r.inputs.get("roles", [])
    }
    push_logins = {schema.migrator for schema in plan.schemas if schema.migrator}
    assert members == set(plan.identities) | push_logins
    for identity in (*plan.identities, *push_logins):
        assert roles[identity].inputs["roles"][0] == names.CONNECT_GROUP
        assert group.urn in roles[identity].dependencies


def longest_chain(run: Run, kept: Callable[[Resource], bool]) -> int:
    """Resources on the longest path through `Resource.dependencies`, among
    the resources `kept`: how deep the SDK's recursive dependency walk
    (pulumi/runtime/resource_cycle_breaker.py) goes. Iterative, so it
    measures any depth without hitting the recursion limit itself."""
    resources = {r.urn: r for r in run.resources if kept(r)}
    depth: dict[str, int] = {}
    for start in resources:
        todo = [start]
        while todo:
            urn = todo[-1]
            if urn in depth:
                todo.pop()
                continue
            pending = [d for d in resources[urn].dependencies if d in resources and d not in depth]
            if pending:
                todo.extend(pending)
                continue
            below = [depth[d] for d in resources[urn].dependencies if d in resources]
            depth[urn] = 1 + max(below, default=0)
            todo.pop()
    return max(depth.values(), default=0)


CHAIN_SIZES = (20, 50)
# The deepest chain of the access layer is a schema's, 15 resources: its
# `_rw` -> `_ro` -> owner -> push login (the roles one after the other, for
# destroy) -> the schema -> PUBLIC's revocation -> USAGE x2 -> 6 default
# privileges (1 revoking PUBLIC's EXECUTE, 5 for the groups) ... and whatever
# it waits on that is no longer. The database's is PUBLIC's revocation ->
# CONNECT for naap_connect.
MAX_ACCESS_CHAIN = 15


@pytest.mark.parametrize("stack", STACKS)
def test_no_dependency_chain_grows_with_the_catalogue(lambda_zip: Path, stack: str) -> None:
    """GRANTs on one catalogue row run one after another, but no chain may be
    as long as the catalogue: the Pulumi SDK walks dependencies recursively
    on every registration, and CONNECT granted per identity made the
    database's chain ~1,000 long at 1,000 plugins (RecursionError). The
    longest path among the pulumi-postgresql resources, and through the
    whole program, is the same for 20 and 50 plugins, and short."""
    access: dict[int, int] = {}
    program: dict[int, int] = {}
    for size in CHAIN_SIZES:
        catalogue = [{"plugin": "base", "schema": "public"}]
        catalogue += [
            {"plugin": f"p{i}", "schema": f"plugin_p{i}", "reads": ["public"]}
            for i in range(1, size)
        ]
        # Hundreds of plugins overflow the committed servers' budget.
        roomy = {"maxConnections": 262_143}
        run = harness.run_program(
            stack,
            harness.stack_overrides(
                stack, lambda_zip, **{"naap-db:plugins": catalogue, "naap-db:limits": roomy}
            ),
        )
        access[size] = longest_chain(run, lambda r: r.type.startswith("postgresql:"))
        program[size] = longest_chain(run, lambda r: True)
    print(f"\n{stack}: longest dependency chain, access {access}, whole program {program}")
    small, large = CHAIN_SIZES
    assert access[small] == access[large] <= MAX_ACCESS_CHAIN
    assert program[small] == program[large]


@pytest.mark.parametrize("stack", STACKS)
def test_roles_exist_before_what_refers_to_them(runs: dict[str, Run], stack: str) -> None:
    """A grant or default privilege waits for the roles it names, and a Role
    for the groups in its `roles` (they are the groups' `name` outputs)."""
    run = runs[stack]
    roles = {r.inputs["name"]: r.urn for r in run.of_type(ROLE)}
    for resource in run.resources:
        referred = [resource.inputs.get(k) for k in ("role", "owner")]
        referred += resource.inputs.get("roles") or [] if resource.type == ROLE else []
        for name in referred:
            if name in roles and name != resource.inputs.get("name"):
                assert roles[name] in run.waits_for(resource), (resource.name, name)
    for resource in run.of_type(ROLE):
        for group in resource.inputs.get("roles") or []:
            assert roles[group] in resource.dependencies, (resource.name, group)


def plugin_cost(run: Run, plan: AccessPlan, plugin: str) -> list[Resource]:
    """The pulumi-postgresql resources that exist because of one plugin: its
    SchemaAccess children and its login identity (and `_a`/`_b`), whose
    `roles` hold its memberships, `naap_connect` included: a plugin has no
    grant on the database of its own."""
    entry = next(e for e in CATALOGUE if e["plugin"] == plugin)
    identity = names.plugin_login(plugin)
    own = {identity, *plan.logins_of(identity)}
    found = list(children(run, schema_access(run, entry["schema"])))
    for resource in postgresql_resources(run):
        if resource not in found and own & {
            resource.inputs.get("name"),
            resource.inputs.get("role"),
        }:
            found.append(resource)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_removing_a_plugin_keeps_its_data(
    runs: dict[str, Run], lambda_zip: Path, stack: str
) -> None:
    """What `pulumi up` declares once a plugin leaves the catalogue: exactly
    its resources disappear, the roles that were members of its groups
    (naap_app, naap_readonly, its readers) lose exactly those entries of
    their `roles`, and nothing else changes. Its schema was
    `retain_on_delete`, so the engine forgets it and the tables stay. Its
    owner role goes: the provider's REASSIGN OWNED before DROP OWNED and DROP
    ROLE hands the schema and its tables to the admin (reachable by no plugin
    role; adding the plugin back hands them to its new owner, naapdb.adopt);
    its other roles own nothing. Its grants depend on the roles, so they are
    revoked first, and the engine runs the updates of the other roles'
    `roles` before any delete. In prod the schema and the roles are
    protected: `pulumi up` refuses until an operator runs `pulumi state
    unprotect` on them."""
    full = runs[stack]
    catalogue = [e for e in CATALOGUE if e["plugin"] != REMOVED_PLUGIN]
    reduced = harness.run_program(
        stack, harness.stack_overrides(stack, lambda_zip, **{"naap-db:plugins": catalogue})
    )
    before = {r.urn: r for r in postgresql_resources(full)}
    after = {r.urn: r for r in postgresql_resources(reduced)}
    assert set(after) <= set(before)
    removed_groups = {f"plugin_{REMOVED_PLUGIN}_rw", f"plugin_{REMOVED_PLUGIN}_ro"}
    updated = set()
    for urn, resource in after.items():
        old = before[urn].inputs
        if resource.inputs == old:
            continue
        updated.add(resource.inputs["name"])
        # only a member's `roles` change: the removed plugin's groups leave it
        assert {k: v for k, v in resource.inputs.items() if k != "roles"} == {
            k: v for k, v in old.items() if k != "roles"
        }, resource.name
        assert [g for g in old["roles"] if g not in removed_groups] == resource.inputs["roles"]
    assert updated == {names.APP, names.READONLY}  # nobody reads plugin_wallet
    removed = [before[urn] for urn in before.keys() - after.keys()]
    plan = PLANS[stack]
    assert sorted(r.name for r in removed) == sorted(
        r.name for r in plugin_cost(full, plan, REMOVED_PLUGIN)
    )
    reduced_plan = build_plan(parse_catalog(catalogue), plan.rotation)
    assert len(removed) == len(list(plan_keys(plan))) - len(list(plan_keys(reduced_plan)))
    (schema,) = [r for r in removed if r.type == SCHEMA]
    assert schema.inputs["name"] == f"plugin_{REMOVED_PLUGIN}"
    assert schema.retain_on_delete and schema.inputs["dropCascade"] is False
    removed_roles = {r.inputs["name"]: r for r in removed if r.type == ROLE}
    owners = {r.inputs["owner"] for r in full.resources if r.type in (SCHEMA, DEFAULT)}
    assert owners == {names.OWNER} | {s.owner for s in plan.schemas}
    # of the owners, the removed plugin's schema's alone goes, with its push login
    removed_schema = f"plugin_{REMOVED_PLUGIN}"
    assert owners & set(removed_roles) == {names.schema_owner(removed_schema)}
    assert names.schema_migrator(removed_schema) in removed_roles
    for resource in removed:
        names_referred = [resource.inputs.get("role"), *(resource.inputs.get("roles") or [])]
        for name in names_referred:
            if name in removed_roles and name != resource.inputs.get("name"):
                assert removed_roles[name].urn in full.waits_for(resource)
    assert all(r.protect == (stack == "prod") for r in removed if r.type in (SCHEMA, ROLE))
    print(
        f"\n{stack}: removing plugin {REMOVED_PLUGIN} removes {len(removed)} resources "
        f"({dict(Counter(r.type.rsplit(':', 1)[-1] for r in removed))}); schema retained"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_resources_per_plugin(runs: dict[str, Run], stack: str) -> None:
    """What one more plugin costs in pulumi-postgresql resources: the same
    for every plugin, `reads` or not (a read is an entry of the identity's
    `roles`, not a resource)."""
    run, plan = runs[stack], PLANS[stack]
    costs = {e["plugin"]: len(plugin_cost(run, plan, e["plugin"])) for e in CATALOGUE}
    print(f"\n{stack} ({plan.rotation.value}) postgresql resources per plugin: {costs}")
    # The plugin owning `public` adds PUBLIC's revocation there (PostgreSQL
    # gives PUBLIC USAGE on `public`, and nothing on a schema it creates).
    owns_public = {e["plugin"] for e in CATALOGUE if e["schema"] == names.PUBLIC}
    others = {cost for plugin, cost in costs.items() if plugin not in owns_public}
    assert len(others) == 1, costs
    assert owns_public and {costs[plugin] for plugin in owns_public} == {min(others) + 1}, costs
    assert {len(e.get("reads", [])) for e in CATALOGUE} == {0, 1}  # both kinds measured


@pytest.mark.db
def test_public_takeover_order_applies_for_a_createrole_admin(fresh_pg: PgServer) -> None:
    """The PostgreSQL side of the `public` decision, on a real server, as an
    RDS-like admin (CREATEROLE, owner of `naap`, not superuser), replaying
    the statements pulumi-postgresql runs for such an admin (it lends itself
    the owner of the schema it changes, then takes it back): taking `public`
    over first works; a grant on `public` before that would need the
    schema's owner `pg_database_owner`, which cannot be lent."""
    import psycopg

    fresh_pg.execute(
        "CREATE ROLE rds_admin LOGIN CREATEROLE PASSWORD 'rds-admin-pw';"
        " ALTER DATABASE naap OWNER TO rds_admin;"
    )
    admin = fresh_pg.connect(user="rds_admin", password="rds-admin-pw")
    # The same refusal; 16 raises it as an internal error (XX000), 17+ as 0A000.
    refusal = {
        "16": psycopg.errors.InternalError_,
    }.get(fresh_pg.version, psycopg.errors.FeatureNotSupported)
    with pytest.raises(refusal, match="cannot have explicit members"):
        admin.execute("GRANT pg_database_owner TO rds_admin")
    for statement in (
        "CREATE ROLE naap_owner WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
        " NOREPLICATION NOBYPASSRLS INHERIT",
        "CREATE ROLE public_ro WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
        " NOREPLICATION NOBYPASSRLS INHERIT",
        # Schema(public, owner=naap_owner): the provider finds it and alters the owner
        "BEGIN; GRANT naap_owner TO rds_admin; ALTER SCHEMA public OWNER TO naap_owner;"
        " REVOKE naap_owner FROM rds_admin; COMMIT",
        # then, depending on it, the revocation and a grant on public
        "BEGIN; GRANT naap_owner TO rds_admin; REVOKE ALL ON SCHEMA public FROM public;"
        " GRANT USAGE ON SCHEMA public TO public_ro; REVOKE naap_owner FROM rds_admin; COMMIT",
    ):
        admin.execute(statement)  # type: ignore[arg-type]
    acl = admin.execute("SELECT nspacl::text[] FROM pg_namespace WHERE nspname = 'public'")
    assert acl.fetchone() == (["naap_owner=UC/naap_owner", "public_ro=U/naap_owner"],)
    assert admin.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = 'rds_admin'"
    ).fetchone() == (False,)

"""The access layer under mocks, with the real dev and prod stack files:
the declared pulumi-postgresql resources and the access plan, one to one,
through the server's provider, with the data-safety options of each stack,
and what removing a plugin from the catalogue declares."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb import names
from naapdb.catalog import parse_catalog
from naapdb.plan import AccessPlan, build_plan
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Resource, Run
from tests.pgserver import PgServer

ROLE = "postgresql:index/role:Role"
SCHEMA = "postgresql:index/schema:Schema"
GRANT = "postgresql:index/grant:Grant"
GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
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


def overrides(stack: str, lambda_zip: Path, **extra: Any) -> dict[str, Any]:
    """The stack's own config, prod's Lambda archive pointed at the stand-in."""
    found: dict[str, Any] = dict(extra)
    if stack == "prod":
        doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
        found["naap-db:credentials"] = {
            **doc["config"]["naap-db:credentials"],
            "lambdaArchive": str(lambda_zip),
        }
    return found


@pytest.fixture(scope="module")
def runs(lambda_zip: Path) -> dict[str, Run]:
    return {stack: harness.run_program(stack, overrides(stack, lambda_zip)) for stack in STACKS}


def postgresql_resources(run: Run) -> list[Resource]:
    return [r for r in run.resources if r.type.startswith("postgresql:")]


def key(resource: Resource) -> tuple[Any, ...]:
    """What a resource does, in the plan's terms."""
    inputs = resource.inputs
    if resource.type == ROLE:
        return ("role", inputs["name"], bool(inputs.get("login")))
    if resource.type == SCHEMA:
        return ("schema", inputs["name"], inputs["owner"])
    if resource.type == GRANT_ROLE:
        return ("membership", inputs["role"], inputs["grantRole"])
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


def plan_keys(plan: AccessPlan) -> Iterator[tuple[Any, ...]]:
    for role in plan.roles:
        yield ("role", role.name, role.login)
    for schema in plan.schemas:
        yield ("schema", schema.name, schema.owner)
    for membership in plan.memberships:
        yield ("membership", membership.member, membership.group)
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


def depends_on(run: Run, resource: Resource) -> set[str]:
    """URNs `resource` waits for, directly or through others."""
    found: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in found:
            found.add(urn)
            todo.extend(run.by_urn(urn).dependencies)
    return found


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
        if resource.type == GRANT and resource.inputs["objectType"] in (
            "table",
            "sequence",
            "function",
        ):
            assert resource.inputs["objects"] == []  # every object of the type in the schema


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
        assert [key(r) for r in mine if r.type == SCHEMA] == [("schema", schema.name, names.OWNER)]
        groups = {role for role in (schema.rw_role, schema.ro_role) if role}
        assert {r.inputs["name"] for r in mine if r.type == ROLE} == groups
        assert {r.inputs["grantRole"] for r in mine if r.type == GRANT_ROLE} <= groups
        assert {r.inputs.get("schema") for r in mine if r.type in PRIVILEGE_TYPES} == {schema.name}
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
    for resource in run.of_type(ROLE):
        role = plan.role(resource.inputs["name"])
        if not role.login:
            assert "password" not in resource.inputs
            continue
        assert resource.is_secret("password")
        password = generated[role.name]
        assert resource.inputs["password"] == password.state["result"]
        assert password.urn in resource.dependencies


def test_rotation_owns_login_passwords_after_creation_in_prod(runs: dict[str, Run]) -> None:
    assert all(r.ignore_changes == [] for r in runs["dev"].of_type(ROLE))
    prod = PLANS["prod"]
    for resource in runs["prod"].of_type(ROLE):
        login = prod.role(resource.inputs["name"]).login
        assert resource.ignore_changes == (["password"] if login else [])


def test_nothing_needs_a_superuser_in_prod(runs: dict[str, Run]) -> None:
    """RDS's admin is CREATEROLE, not superuser: the provider is told so, no
    role asks for what only a superuser may grant, and no resource type
    needs more than a CREATEROLE database owner."""
    run = runs["prod"]
    assert str(run.one(PROVIDER).inputs["superuser"]).lower() == "false"
    assert {r.type for r in postgresql_resources(run)} <= {ROLE, SCHEMA, GRANT, GRANT_ROLE, DEFAULT}
    for role in run.of_type(ROLE):
        assert all(role.inputs[attribute] is False for attribute in DENIED_ATTRIBUTES), role.name
    owner = run.one(ROLE, f"-role-{names.OWNER}")
    assert owner.inputs["login"] is False
    assert not any(r.inputs.get("withAdminOption") for r in run.of_type(GRANT_ROLE))
    assert not any(
        r.inputs.get("withGrantOption") for r in run.resources if r.type in PRIVILEGE_TYPES
    )


@pytest.mark.parametrize("stack", STACKS)
def test_public_is_taken_over_before_any_privilege_on_it(runs: dict[str, Run], stack: str) -> None:
    run = runs[stack]
    public = run.one(SCHEMA, f"-{names.PUBLIC}-schema")
    assert public.inputs["owner"] == names.OWNER
    on_public = [
        r
        for r in run.resources
        if r.type in PRIVILEGE_TYPES and r.inputs.get("schema") == names.PUBLIC
    ]
    assert on_public
    assert all(public.urn in depends_on(run, r) for r in on_public)


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
    assert set(by_target) == {None, *(schema.name for schema in PLANS[stack].schemas)}
    for resources in by_target.values():
        ordered = sorted(resources, key=lambda r: len(depends_on(run, r)))
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.urn in depends_on(run, later), (earlier.name, later.name)


def test_roles_exist_before_what_refers_to_them(runs: dict[str, Run]) -> None:
    run = runs["prod"]
    roles = {r.inputs["name"]: r.urn for r in run.of_type(ROLE)}
    for resource in run.resources:
        referred = [resource.inputs.get(k) for k in ("role", "grantRole", "owner")]
        for name in referred:
            if resource.type != ROLE and name in roles:
                assert roles[name] in depends_on(run, resource), (resource.name, name)


def plugin_cost(run: Run, plan: AccessPlan, plugin: str) -> list[Resource]:
    """The resources that exist because of one plugin: its SchemaAccess
    children (less other plugins' memberships into its `_ro`, which are
    theirs), its login identity (and `_a`/`_b`), their memberships and
    CONNECT grant."""
    entry = next(e for e in CATALOGUE if e["plugin"] == plugin)
    identities = {names.plugin_login(e["plugin"]) for e in CATALOGUE}
    identity = names.plugin_login(plugin)
    own = {identity, *plan.logins_of(identity)}
    found = [
        r
        for r in children(run, schema_access(run, entry["schema"]))
        if not (r.type == GRANT_ROLE and r.inputs["role"] in identities - own)
    ]
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
    its resources disappear and nothing else changes. Its schema was
    `retain_on_delete`, so the engine forgets it and the tables stay (owned
    by naap_owner, reachable by no plugin role). Its roles own nothing
    (naap_owner owns every object), so the provider's REASSIGN/DROP OWNED
    before DROP ROLE has nothing to move and the drop cannot loop on
    "role cannot be dropped because some objects depend on it"; its grants
    and memberships depend on the roles, so they are revoked first. In prod
    the schema and the roles are protected: `pulumi up` refuses until an
    operator runs `pulumi state unprotect` on them."""
    full = runs[stack]
    catalogue = [e for e in CATALOGUE if e["plugin"] != REMOVED_PLUGIN]
    reduced = harness.run_program(
        stack, overrides(stack, lambda_zip, **{"naap-db:plugins": catalogue})
    )
    before = {r.urn: r for r in postgresql_resources(full)}
    after = {r.urn: r for r in postgresql_resources(reduced)}
    assert set(after) <= set(before)
    for urn, resource in after.items():
        assert resource.inputs == before[urn].inputs, resource.name
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
    assert owners == {names.OWNER} and not owners & set(removed_roles)
    for resource in removed:
        for field in ("role", "grantRole"):
            name = resource.inputs.get(field)
            if name in removed_roles:
                assert removed_roles[name].urn in depends_on(full, resource)
    assert all(r.protect == (stack == "prod") for r in removed if r.type in (SCHEMA, ROLE))
    print(
        f"\n{stack}: removing plugin {REMOVED_PLUGIN} removes {len(removed)} resources "
        f"({dict(Counter(r.type.rsplit(':', 1)[-1] for r in removed))}); schema retained"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_resources_per_plugin(runs: dict[str, Run], stack: str) -> None:
    """What one more plugin costs: the same for every plugin with the same
    number of `reads`, whatever the catalogue's size."""
    run, plan = runs[stack], PLANS[stack]
    costs = {e["plugin"]: len(plugin_cost(run, plan, e["plugin"])) for e in CATALOGUE}
    by_reads: dict[int, set[int]] = {}
    for entry in CATALOGUE:
        by_reads.setdefault(len(entry.get("reads", [])), set()).add(costs[entry["plugin"]])
    print(f"\n{stack} ({plan.rotation.value}) resources per plugin: {costs}")
    assert all(len(cost) == 1 for cost in by_reads.values()), by_reads


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
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="cannot have explicit members"):
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

"""The isolation matrix on a real PostgreSQL: a plugin's schema is a security
boundary.

`plan --format sql` is applied to a fresh `naap`; every login role gets a
real password; each schema's push login, as its schema's owner (and
`naap_migrator` as `naap_owner` in `naap_meta`), then creates a table with a
serial key and a function there, after the grants, as the push does, so what
is tested on them is the default privileges. Each login role then connects over
TCP with its password and tries, in every schema, SELECT, INSERT, UPDATE,
DELETE, nextval, a function call, CREATE TABLE, DROP TABLE and ALTER TABLE.
The expected outcome of every cell is derived from the plan (memberships,
grants, default privileges, owners, revocations), never written per role;
the plan grants nothing on objects, so their rights are the defaults'.
A role the plan does not know cannot connect to `naap` at all: CONNECT is
granted to the group `naap_connect` only, and every login connects through
its identity's membership in it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from naapdb import names
from naapdb.plan import AccessPlan, Rotation, SchemaPlan, build_plan
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import load_stack_settings
from tests.pgserver import PgServer

pytestmark = pytest.mark.db

CATALOG = load_stack_settings("dev").catalog
TABLE, SEQUENCE, FUNCTION = "probe", "probe_id_seq", "probe_fn"
INTRUDER = "naap_intruder"

# PUBLIC's rights that PostgreSQL 15+ gives on its own (what the plan's
# revocations take back): CONNECT and TEMP on a database, USAGE on `public`,
# EXECUTE on every new function.
PUBLIC = "public"
BUILTIN_PUBLIC_SCHEMA_RIGHTS = {names.PUBLIC: {"USAGE"}}


@dataclass(frozen=True)
class Probe:
    """One thing a role tries in a schema, and how the plan decides it."""

    name: str
    statement: Callable[[str], sql.Composable]
    allowed: Callable[[Rights], bool]


@dataclass(frozen=True)
class Rights:
    """What one login may do in one schema, derived from the plan."""

    owner: bool
    schema: frozenset[str]
    table: frozenset[str]
    sequence: frozenset[str]
    function: frozenset[str]

    @property
    def usage(self) -> bool:
        return self.owner or "USAGE" in self.schema

    def on_table(self, privilege: str) -> bool:
        return self.owner or (self.usage and privilege in self.table)

    def may_nextval(self) -> bool:
        return self.owner or (self.usage and bool({"USAGE", "UPDATE"} & self.sequence))


def _table(schema: str) -> sql.Composable:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))


PROBES = (
    Probe(
        "select",
        lambda s: sql.SQL("SELECT count(*) FROM {}").format(_table(s)),
        lambda r: r.on_table("SELECT"),
    ),
    # The serial default calls nextval: INSERT needs the sequence too.
    Probe(
        "insert",
        lambda s: sql.SQL("INSERT INTO {} (note) VALUES ('probe')").format(_table(s)),
        lambda r: r.on_table("INSERT") and r.may_nextval(),
    ),
    # No WHERE: UPDATE and DELETE need nothing but their own privilege.
    Probe(
        "update",
        lambda s: sql.SQL("UPDATE {} SET note = 'probed'").format(_table(s)),
        lambda r: r.on_table("UPDATE"),
    ),
    Probe(
        "delete",
        lambda s: sql.SQL("DELETE FROM {}").format(_table(s)),
        lambda r: r.on_table("DELETE"),
    ),
    Probe(
        "nextval",
        lambda s: sql.SQL("SELECT nextval({})").format(sql.Literal(f"{s}.{SEQUENCE}")),
        lambda r: r.may_nextval(),
    ),
    Probe(
        "call",
        lambda s: sql.SQL("SELECT {}.{}()").format(sql.Identifier(s), sql.Identifier(FUNCTION)),
        lambda r: r.owner or (r.usage and "EXECUTE" in r.function),
    ),
    Probe(
        "create",
        lambda s: sql.SQL("CREATE TABLE {}.{} (id int)").format(
            sql.Identifier(s), sql.Identifier("intruder")
        ),
        lambda r: r.owner or "CREATE" in r.schema,
    ),
    # Only an owner (or a member inheriting from it) may drop or alter.
    Probe("drop", lambda s: sql.SQL("DROP TABLE {}").format(_table(s)), lambda r: r.owner),
    Probe(
        "alter",
        lambda s: sql.SQL("ALTER TABLE {} ADD COLUMN extra int").format(_table(s)),
        lambda r: r.owner,
    ),
)


def member_of(plan: AccessPlan, login: str) -> set[str]:
    """Every role whose rights `login` uses: itself, its groups, their
    groups (all memberships inherit), and PUBLIC."""
    roles, todo = {login, PUBLIC}, [login]
    while todo:
        member = todo.pop()
        for membership in plan.memberships:
            if membership.member == member and membership.group not in roles:
                roles.add(membership.group)
                todo.append(membership.group)
    return roles


def rights(plan: AccessPlan, login: str, schema: str) -> Rights:
    """The plan's answer for a login in a schema. Objects are created after
    the grants, so their rights come from the default privileges of their
    owner; PUBLIC keeps PostgreSQL's built-in rights unless the plan
    revokes them."""
    roles = member_of(plan, login)
    owner = plan_schema(plan, schema).owner
    revoked = {r.schema for r in plan.revocations if r.role == PUBLIC}

    def granted(object_type: str) -> frozenset[str]:
        found: set[str] = set()
        for default in plan.default_privileges:
            applies = default.owner == owner and default.object_type == object_type
            if applies and default.schema in (schema, None) and default.role in roles:
                found.update(default.privileges)
        if object_type == "function" and PUBLIC in roles and not _revokes_execute(plan, owner):
            found.add("EXECUTE")
        return frozenset(found)

    schema_rights: set[str] = set()
    for grant in plan.grants_in(schema):
        if grant.object_type == "schema" and grant.role in roles:
            schema_rights.update(grant.privileges)
    if schema not in revoked:
        schema_rights |= BUILTIN_PUBLIC_SCHEMA_RIGHTS.get(schema, set())
    return Rights(
        owner=owner in roles,
        schema=frozenset(schema_rights),
        table=granted("table"),
        sequence=granted("sequence"),
        function=granted("function"),
    )


def _revokes_execute(plan: AccessPlan, owner: str) -> bool:
    return any(
        d.role == PUBLIC and d.object_type == "function" and d.owner == owner and not d.privileges
        for d in plan.default_privileges
    )


def may_connect(plan: AccessPlan, login: str) -> bool:
    roles = member_of(plan, login)
    if PUBLIC in roles and not any(r.schema is None for r in plan.revocations):
        return True
    return any(
        grant.object_type == "database" and grant.role in roles and "CONNECT" in grant.privileges
        for grant in plan.grants
    )


def plan_schema(plan: AccessPlan, schema: str) -> SchemaPlan:
    return next(s for s in plan.schemas if s.name == schema)


def attempt(connection: psycopg.Connection, statement: sql.Composable) -> str:
    """Run one probe in a transaction that is always rolled back."""
    try:
        with connection.transaction(force_rollback=True):
            connection.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return "denied"
    return "allowed"


def prepare(server: PgServer, plan: AccessPlan) -> dict[str, str]:
    """Apply the plan, give every login a password, and create the probed
    objects as each schema's owner (through its push login); returns the
    passwords."""
    server.execute(plan_to_sql(plan))
    # Every login, `_b` included: under alternating rotation `pulumi up`
    # leaves `_b` without a password until its first rotation (tests/naapdb/
    # test_rotate.py); here both carry the identity, as after a rotation.
    passwords = {role.name: secrets.token_urlsafe(18) for role in plan.login_roles}
    server.set_passwords(passwords)
    for schema in plan.schemas:
        # The login the push creates a schema's objects with, acting as its owner.
        login = schema.migrator or plan.logins_of(names.MIGRATOR)[0]
        with server.connect(user=login, password=passwords[login]) as connection:
            connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(schema.owner)))
            name = sql.Identifier(schema.name)
            connection.execute(
                sql.SQL(
                    "CREATE TABLE {}.{} (id serial PRIMARY KEY, note text);"
                    " INSERT INTO {}.{} (note) VALUES ('seed');"
                    " CREATE FUNCTION {}.{}() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
                ).format(
                    name,
                    sql.Identifier(TABLE),
                    name,
                    sql.Identifier(TABLE),
                    name,
                    sql.Identifier(FUNCTION),
                )
            )
    return passwords


def cells(plan: AccessPlan) -> Iterator[tuple[str, str, Probe]]:
    for role in plan.login_roles:
        for schema in plan.schemas:
            for probe in PROBES:
                yield role.name, schema.name, probe


@pytest.mark.parametrize("rotation", list(Rotation), ids=[r.value for r in Rotation])
def test_isolation_matrix(fresh_pg: PgServer, rotation: Rotation) -> None:
    plan = build_plan(CATALOG, rotation)
    passwords = prepare(fresh_pg, plan)
    connections: dict[str, psycopg.Connection] = {}
    mismatches: list[str] = []
    total = matched = 0

    def check(cell: str, expected: str, actual: str) -> None:
        nonlocal total, matched
        total += 1
        if expected == actual:
            matched += 1
        else:
            mismatches.append(f"{cell}: expected {expected}, got {actual}")

    for role in plan.login_roles:
        expected = "allowed" if may_connect(plan, role.name) else "denied"
        try:
            connections[role.name] = fresh_pg.connect(
                user=role.name, password=passwords[role.name], autocommit=True
            )
            actual = "allowed"
        except psycopg.OperationalError as error:
            actual = "denied" if "permission denied for database" in str(error) else str(error)
        check(f"{role.name} connect", expected, actual)
    for login, schema, probe in cells(plan):
        if login not in connections:
            continue
        expected = "allowed" if probe.allowed(rights(plan, login, schema)) else "denied"
        check(
            f"{login} {probe.name} {schema}",
            expected,
            attempt(connections[login], probe.statement(schema)),
        )

    # A role the plan does not know, with a valid password, cannot connect.
    intruder_password = secrets.token_urlsafe(18)
    fresh_pg.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}")
        .format(sql.Identifier(INTRUDER), sql.Literal(intruder_password))
        .as_string(None)
    )
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        fresh_pg.connect(user=INTRUDER, password=intruder_password)
    total += 1
    matched += 1
    # Every login connected, and only through naap_connect: the database's
    # one grant (besides its owner's) is CONNECT for that group.
    assert set(connections) == {role.name for role in plan.login_roles}
    with fresh_pg.connect() as admin:
        acl = admin.execute(
            "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_database d,"
            " aclexplode(d.datacl) a WHERE d.datname = current_database()"
            " AND a.grantee <> d.datdba"
        ).fetchall()
    assert acl == [(names.CONNECT_GROUP, "CONNECT")]
    for connection in connections.values():
        connection.close()

    expected_cells = len(plan.login_roles) * (1 + len(plan.schemas) * len(PROBES)) + 1
    print(
        f"\nisolation matrix ({rotation.value}): {len(plan.login_roles)} logins x "
        f"{len(plan.schemas)} schemas x {len(PROBES)} probes + connects = {total} cells, "
        f"{matched} matched"
    )
    assert not mismatches, "\n".join(mismatches)
    assert total == matched == expected_cells


def test_the_model_denies_plugins_what_the_design_denies() -> None:
    """The derivation itself, on the design's statements (so a wrong model
    cannot make the matrix pass): a plugin reads only its `reads`, never
    writes elsewhere, never does DDL; the app writes everywhere; readonly
    only reads; each schema's push login owns that schema alone, naap_migrator
    naap_meta alone."""
    plan = build_plan(CATALOG, Rotation.SINGLE)
    plugin_schemas = [s for s in plan.schemas if s.plugin]
    for entry in CATALOG.plugins:
        login = names.plugin_login(entry.plugin)
        for schema in plan.schemas:
            granted = rights(plan, login, schema.name)
            assert not granted.owner
            assert ("INSERT" in granted.table) == (schema.name == entry.schema)
            assert ("SELECT" in granted.table) == (schema.name in (entry.schema, *entry.reads))
    for schema in plugin_schemas:
        app = rights(plan, names.APP, schema.name)
        assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= app.table and not app.owner
        readonly = rights(plan, names.READONLY, schema.name)
        assert readonly.table == {"SELECT", "REFERENCES"} and not readonly.may_nextval()
    for login in plan.login_roles:
        owned = [s.name for s in plan.schemas if rights(plan, login.name, s.name).owner]
        expected = {names.MIGRATOR: [names.META_SCHEMA]}
        expected |= {s.migrator: [s.name] for s in plugin_schemas if s.migrator}
        assert owned == expected.get(login.name, []), login.name
    # naap_meta: the push logins may call the recorder; naap_readonly reads the ledger
    for login in plan.login_roles:
        meta = rights(plan, login.name, names.META_SCHEMA)
        if login.name == names.READONLY:
            assert meta.table == {"SELECT"} and not meta.function
        elif login.purpose == "schema-migrator":
            assert meta.usage and meta.function == {"EXECUTE"} and not meta.table
        elif login.name != names.MIGRATOR:
            assert not meta.usage, login.name
    # every login may connect, through naap_connect alone; nobody else may
    for rotation in Rotation:
        rotated = build_plan(CATALOG, rotation)
        for role in rotated.login_roles:
            assert may_connect(rotated, role.name)
            assert names.CONNECT_GROUP in member_of(rotated, role.name)
        assert not may_connect(rotated, INTRUDER)
        assert not [g for g in rotated.database_grants if g.role != names.CONNECT_GROUP]

"""The drift check: compares the live database with the access plan.

The live state is read with ONE catalog query, whatever the number of
schemas: a single JSON document built in SQL from `pg_namespace`,
`pg_roles`, `pg_auth_members`, `pg_class`, `pg_attribute`, `pg_proc`,
`pg_default_acl` and the exploded ACLs (`aclexplode`) of the database, the
schemas, the relations, their columns and the routines. Everything else
happens in Python, against `naapdb.plan`, so the cost on the server stays
one round trip and the comparison is linear in what it reads.

What counts as drift (each becomes one `Difference` with the SQL that fixes it):

- a schema of the plan missing, or not owned by `naap_owner`; a schema the
  plan lacks (system and extension schemas aside);
- a role of the plan missing, with the wrong LOGIN, or holding SUPERUSER,
  CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS;
- a login's connection limit or timeouts not the plan's limits
  (`naapdb.verify_limits`);
- a membership of the plan missing (or without INHERIT/SET, PostgreSQL 16+),
  or held WITH ADMIN OPTION; any other membership a plan role holds, or that
  gives a role outside the plan a plan role's rights;
- a privilege the plan grants missing on the database (CONNECT, for the
  group `naap_connect` only: the login identities connect as its members, so
  an identity out of `naap_connect` is a missing membership, and CONNECT
  held by any other role is an extra grant) or a schema; on any
  existing table, sequence or function of a schema, a privilege missing that
  the schema's default privileges give (`AccessPlan.object_privileges`: the
  plan has no grants on objects, naap_owner's defaults give every object its
  rights when it is created); any other privilege held by `PUBLIC`, a plan
  role, or a role outside the plan, on the database, a plan schema, its
  objects or their columns (so a hand `GRANT` is drift), and grant options
  nobody was given;
- a default privilege of the plan missing; any other default privilege;
  `PUBLIC`'s built-in EXECUTE on the functions `naap_owner` creates;
- a table, view, sequence or routine of a plan schema not owned by `naap_owner`.

Not drift: an object owner's own privileges and `naap_owner`'s (the owner
holds everything by definition); the server's admin roles (roles outside the
plan with SUPERUSER or CREATEROLE), their memberships and privileges; objects
that belong to an extension; what lies inside a schema the plan lacks (the
schema itself is reported). A NULL ACL is read as the built-in default
(`acldefault`), so `PUBLIC`'s implicit EXECUTE on a function is seen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from psycopg import sql

from naapdb import names
from naapdb.limits import Budget
from naapdb.plan import AccessPlan
from naapdb.verify_limits import budget_drift, limit_drift

PUBLIC = "public"  # how the query and the plan name the PUBLIC pseudo-role

# Kinds of difference, in the order they are listed within a group.
MISSING_SCHEMA = "missing-schema"
EXTRA_SCHEMA = "extra-schema"
SCHEMA_OWNER = "schema-owner"
MISSING_ROLE = "missing-role"
ROLE_ATTRIBUTE = "role-attribute"
ROLE_LIMIT = "role-limit"
MISSING_MEMBERSHIP = "missing-membership"
MEMBERSHIP_OPTION = "membership-option"
EXTRA_MEMBERSHIP = "extra-membership"
OBJECT_OWNER = "object-owner"
MISSING_GRANT = "missing-grant"
EXTRA_GRANT = "extra-grant"
MISSING_DEFAULT_PRIVILEGE = "missing-default-privilege"
EXTRA_DEFAULT_PRIVILEGE = "extra-default-privilege"
CONNECTION_BUDGET = "connection-budget"
KINDS = (
    MISSING_SCHEMA,
    EXTRA_SCHEMA,
    SCHEMA_OWNER,
    MISSING_ROLE,
    ROLE_ATTRIBUTE,
    ROLE_LIMIT,
    MISSING_MEMBERSHIP,
    MEMBERSHIP_OPTION,
    EXTRA_MEMBERSHIP,
    OBJECT_OWNER,
    MISSING_GRANT,
    EXTRA_GRANT,
    MISSING_DEFAULT_PRIVILEGE,
    EXTRA_DEFAULT_PRIVILEGE,
    CONNECTION_BUDGET,
)


@dataclass(frozen=True)
class Group:
    """Where a difference is listed: `roles`, `database`, or one schema (a
    schema may well be called "roles", hence a scope besides the name)."""

    scope: str
    schema: str | None = None


ROLES_GROUP = Group("roles")
DATABASE_GROUP = Group("database")


def in_schema(schema: str) -> Group:
    return Group("schema", schema)


# Role attributes no role of the plan may hold: (pg_roles column, keyword).
DENIED_ATTRIBUTES = (
    ("superuser", "SUPERUSER"),
    ("createrole", "CREATEROLE"),
    ("createdb", "CREATEDB"),
    ("replication", "REPLICATION"),
    ("bypassrls", "BYPASSRLS"),
)

# Relation kinds (pg_class.relkind): the plan's object type and the keyword
# ALTER ... OWNER needs. GRANT ... ON TABLE covers every non-sequence kind.
RELATION_KINDS: dict[str, tuple[str, str]] = {
    "r": ("table", "TABLE"),
    "p": ("table", "TABLE"),
    "v": ("table", "VIEW"),
    "m": ("table", "MATERIALIZED VIEW"),
    "f": ("table", "FOREIGN TABLE"),
    "S": ("sequence", "SEQUENCE"),
}
# Routine kinds (pg_proc.prokind) and their GRANT/ALTER keyword.
ROUTINE_KINDS = {"f": "FUNCTION", "w": "FUNCTION", "a": "AGGREGATE", "p": "PROCEDURE"}
# pg_default_acl.defaclobjtype -> (plan object type, keyword of ALTER DEFAULT PRIVILEGES).
DEFAULT_ACL_TYPES: dict[str, tuple[str, str]] = {
    "r": ("table", "TABLES"),
    "S": ("sequence", "SEQUENCES"),
    "f": ("function", "FUNCTIONS"),
    "T": ("type", "TYPES"),
    "n": ("schema", "SCHEMAS"),
    "L": ("large object", "LARGE OBJECTS"),
}
OBJECT_TYPE_CODES = {"table": "r", "sequence": "S", "function": "f"}
# What PostgreSQL grants to others than the owner when no global default
# ACL row exists (acldefault): EXECUTE on functions and USAGE on types to PUBLIC.
BUILTIN_DEFAULTS: dict[str, dict[str, frozenset[str]]] = {
    "f": {PUBLIC: frozenset({"EXECUTE"})},
    "T": {PUBLIC: frozenset({"USAGE"})},
}
PRIVILEGE_ORDER = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "MAINTAIN",
    "USAGE",
    "EXECUTE",
    "CREATE",
    "CONNECT",
    "TEMPORARY",
)
# aclexplode spells privileges as upper-case keywords; anything else is
# refused rather than pasted into a fix statement.
PRIVILEGE_WORD = re.compile(r"^[A-Z][A-Z ]*$")


def _acl(expression: str, owner: str) -> str:
    """SQL for an ACL as a JSON array of [grantee, privilege, grantable],
    without the owner's own entries; grantee 0 (PUBLIC) as 'public'."""
    return (
        "(SELECT coalesce(json_agg(json_build_array("
        "CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, "
        "a.privilege_type, a.is_grantable)), '[]'::json) "
        f"FROM pg_catalog.aclexplode({expression}) AS a WHERE a.grantee <> {owner})"
    )


def _extension_member(catalog: str, oid: str) -> str:
    return (
        "EXISTS (SELECT FROM pg_catalog.pg_depend AS e WHERE e.classid = "
        f"'pg_catalog.{catalog}'::pg_catalog.regclass AND e.objid = {oid} AND e.deptype = 'e')"
    )


_RELATION_ACL = (
    "coalesce(c.relacl, pg_catalog.acldefault("
    "(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))"
)

# The one query. Static text (no identifier is ever interpolated): the only
# input is the connection's own database.
LIVE_STATE_QUERY = f"""
WITH user_schemas AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl
    FROM pg_catalog.pg_namespace AS n
    WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND NOT {_extension_member("pg_namespace", "n.oid")}
)
SELECT json_build_object(
    'database', pg_catalog.current_database(),
    'server_version', pg_catalog.current_setting('server_version_num')::int,
    'max_connections', pg_catalog.current_setting('max_connections')::int,
    'database_acl', (
        SELECT {_acl("coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))", "d.datdba")}
        FROM pg_catalog.pg_database AS d WHERE d.datname = pg_catalog.current_database()),
    'roles', (
        SELECT coalesce(json_agg(json_build_array(r.rolname, r.rolcanlogin, r.rolsuper,
            r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
            coalesce(r.rolconfig, '{{}}'), (
                SELECT coalesce(s.setconfig, '{{}}') FROM pg_catalog.pg_db_role_setting AS s
                JOIN pg_catalog.pg_database AS d ON d.oid = s.setdatabase
                WHERE s.setrole = r.oid AND d.datname = pg_catalog.current_database())
            ) ORDER BY r.rolname), '[]'::json)
        FROM pg_catalog.pg_roles AS r WHERE r.rolname !~ '^pg_'),
    'memberships', (
        SELECT coalesce(json_agg(json_build_array(m.rolname, g.rolname,
            o.options -> 'admin_option', o.options -> 'inherit_option',
            o.options -> 'set_option',
            CASE WHEN am.grantor <> 10 THEN pg_catalog.pg_get_userbyid(am.grantor) END)
            ORDER BY g.rolname, m.rolname, am.grantor), '[]'::json)
        FROM pg_catalog.pg_auth_members AS am
        JOIN pg_catalog.pg_roles AS m ON m.oid = am.member
        JOIN pg_catalog.pg_roles AS g ON g.oid = am.roleid
        CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(am) AS options) AS o),
    'schemas', (
        SELECT coalesce(json_agg(json_build_array(s.nspname,
            pg_catalog.pg_get_userbyid(s.nspowner),
            {_acl("coalesce(s.nspacl, pg_catalog.acldefault('n', s.nspowner))", "s.nspowner")}
        ) ORDER BY s.nspname), '[]'::json)
        FROM user_schemas AS s),
    'relations', (
        SELECT coalesce(json_agg(json_build_array(s.nspname, c.relname, c.relkind,
            pg_catalog.pg_get_userbyid(c.relowner),
            {_acl(_RELATION_ACL, "c.relowner")},
            c.relkind = 'S' AND EXISTS (
                SELECT FROM pg_catalog.pg_depend AS t
                WHERE t.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND t.objid = c.oid
                  AND t.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                  AND t.deptype IN ('a', 'i'))
        ) ORDER BY s.nspname, c.relname), '[]'::json)
        FROM pg_catalog.pg_class AS c JOIN user_schemas AS s ON s.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND NOT {_extension_member("pg_class", "c.oid")}),
    'columns', (
        SELECT coalesce(json_agg(json_build_array(s.nspname, c.relname, a.attname,
            {_acl("a.attacl", "c.relowner")}) ORDER BY s.nspname, c.relname, a.attnum),
            '[]'::json)
        FROM pg_catalog.pg_attribute AS a
        JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
        JOIN user_schemas AS s ON s.oid = c.relnamespace
        WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
          AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND NOT {_extension_member("pg_class", "c.oid")}),
    'routines', (
        SELECT coalesce(json_agg(json_build_array(s.nspname, p.proname,
            pg_catalog.pg_get_function_identity_arguments(p.oid), p.prokind,
            pg_catalog.pg_get_userbyid(p.proowner),
            {_acl("coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))", "p.proowner")}
        ) ORDER BY s.nspname, p.proname, p.oid), '[]'::json)
        FROM pg_catalog.pg_proc AS p JOIN user_schemas AS s ON s.oid = p.pronamespace
        WHERE NOT {_extension_member("pg_proc", "p.oid")}),
    'default_acls', (
        SELECT coalesce(json_agg(json_build_array(
            pg_catalog.pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype,
            {_acl("d.defaclacl", "d.defaclrole")})
            ORDER BY n.nspname NULLS FIRST, d.defaclrole, d.defaclobjtype), '[]'::json)
        FROM pg_catalog.pg_default_acl AS d
        LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = d.defaclnamespace)
)
"""


# --- the live state --------------------------------------------------------


@dataclass(frozen=True)
class AclEntry:
    """One exploded ACL item; `grantee` is "public" for PUBLIC."""

    grantee: str
    privilege: str
    grantable: bool


@dataclass(frozen=True)
class LiveRole:
    name: str
    login: bool
    superuser: bool
    createrole: bool
    createdb: bool
    replication: bool
    bypassrls: bool
    connection_limit: int = -1
    settings: tuple[str, ...] = ()
    """`rolconfig`: the role's own settings ("statement_timeout=30000")."""
    database_settings: tuple[str, ...] = ()
    """Its settings in this database only (`ALTER ROLE ... IN DATABASE`),
    which take precedence over its own."""

    @property
    def is_admin(self) -> bool:
        """The server's admin: may do anything the plan could forbid anyway."""
        return self.superuser or self.createrole


@dataclass(frozen=True)
class LiveMembership:
    """A row of pg_auth_members; inherit/set are None before PostgreSQL 16.
    `grantor` is None for the bootstrap superuser (every superuser's grants
    are recorded as its), else the role a REVOKE must name in GRANTED BY:
    since 16 a membership is one row per grantor, and a plain REVOKE only
    takes back the revoker's own."""

    member: str
    group: str
    admin: bool
    inherit: bool | None
    set: bool | None
    grantor: str | None = None

    @property
    def confers_rights(self) -> bool:
        """False for the ADMIN-only membership PostgreSQL 16 gives a
        CREATEROLE creator in the roles it creates (no INHERIT, no SET)."""
        return self.inherit is None or bool(self.inherit or self.set)


@dataclass(frozen=True)
class LiveSchema:
    name: str
    owner: str
    acl: tuple[AclEntry, ...]


@dataclass(frozen=True)
class LiveObject:
    """A relation or routine of a schema; `keyword` is what ALTER names it by."""

    schema: str
    name: str
    object_type: str  # the plan's: table, sequence or function
    keyword: str
    owner: str
    acl: tuple[AclEntry, ...]
    arguments: str | None = None  # routines: identity arguments
    linked_to_table: bool = False  # a serial/identity sequence follows its table's owner

    @property
    def grant_keyword(self) -> str:
        """GRANT knows only TABLE (views and foreign tables too), SEQUENCE,
        FUNCTION (aggregates too) and PROCEDURE."""
        if self.object_type == "table":
            return "TABLE"
        if self.object_type == "sequence":
            return "SEQUENCE"
        return "PROCEDURE" if self.keyword == "PROCEDURE" else "FUNCTION"


@dataclass(frozen=True)
class LiveColumn:
    schema: str
    table: str
    column: str
    acl: tuple[AclEntry, ...]


@dataclass(frozen=True)
class LiveDefaultAcl:
    """A pg_default_acl row: `schema` None for a global one."""

    owner: str
    schema: str | None
    object_code: str
    acl: tuple[AclEntry, ...]


@dataclass(frozen=True)
class LiveState:
    """What the one query read."""

    database: str
    server_version: int
    database_acl: tuple[AclEntry, ...]
    roles: Mapping[str, LiveRole]
    memberships: tuple[LiveMembership, ...]
    schemas: Mapping[str, LiveSchema]
    objects: tuple[LiveObject, ...]
    columns: tuple[LiveColumn, ...]
    default_acls: tuple[LiveDefaultAcl, ...]
    max_connections: int | None = None


def parse_live_state(document: Mapping[str, Any]) -> LiveState:
    """The JSON document of `LIVE_STATE_QUERY` as typed data."""
    roles = {
        name: LiveRole(
            name,
            login,
            superuser,
            createrole,
            createdb,
            replication,
            bypassrls,
            connection_limit,
            tuple(settings or ()),
            tuple(database_settings or ()),
        )
        for (
            name,
            login,
            superuser,
            createrole,
            createdb,
            replication,
            bypassrls,
            connection_limit,
            settings,
            database_settings,
        ) in document["roles"]
    }
    memberships = tuple(
        LiveMembership(member, group, bool(admin), inherit, set_, grantor)
        for member, group, admin, inherit, set_, grantor in document["memberships"]
    )
    schemas = {
        name: LiveSchema(name, owner, _entries(acl)) for name, owner, acl in document["schemas"]
    }
    objects: list[LiveObject] = []
    for schema, name, kind, owner, acl, linked in document["relations"]:
        object_type, keyword = RELATION_KINDS[kind]
        objects.append(
            LiveObject(schema, name, object_type, keyword, owner, _entries(acl), None, linked)
        )
    for schema, name, arguments, kind, owner, acl in document["routines"]:
        keyword = ROUTINE_KINDS.get(kind, "FUNCTION")
        objects.append(
            LiveObject(schema, name, "function", keyword, owner, _entries(acl), arguments)
        )
    return LiveState(
        database=document["database"],
        server_version=int(document["server_version"]),
        max_connections=document.get("max_connections"),
        database_acl=_entries(document["database_acl"] or []),
        roles=roles,
        memberships=memberships,
        schemas=schemas,
        objects=tuple(objects),
        columns=tuple(
            LiveColumn(schema, table, column, _entries(acl))
            for schema, table, column, acl in document["columns"]
        ),
        default_acls=tuple(
            LiveDefaultAcl(owner, schema, code, _entries(acl))
            for owner, schema, code, acl in document["default_acls"]
        ),
    )


def _entries(raw: Iterable[Sequence[Any]]) -> tuple[AclEntry, ...]:
    return tuple(AclEntry(grantee, privilege, bool(option)) for grantee, privilege, option in raw)


class Executor(Protocol):
    """What reading the live state needs of a connection."""

    def execute(self, query: Any, params: Any = None) -> Any: ...


class CountingConnection:
    """Passes statements to a connection and counts them, so the tests and
    the benchmark can show that the cost is one query whatever the size."""

    def __init__(self, connection: Executor) -> None:
        self.connection = connection
        self.queries = 0

    def execute(self, query: Any, params: Any = None) -> Any:
        self.queries += 1
        return self.connection.execute(query, params)


def read_live_state(connection: Executor) -> LiveState:
    """One round trip: the whole catalog state as one JSON document."""
    row = connection.execute(LIVE_STATE_QUERY).fetchone()
    document = row[0]
    if isinstance(document, str):  # a connection without psycopg's JSON loader
        document = json.loads(document)
    return parse_live_state(document)


# --- differences -----------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way the live database differs from the plan, and the SQL that fixes it."""

    kind: str
    scope: str  # "roles", "database" or "schema"
    schema: str | None
    message: str
    fix: str
    role: str | None = None
    privileges: tuple[str, ...] = ()

    @property
    def group(self) -> Group:
        return Group(self.scope, self.schema)


@dataclass(frozen=True)
class Report:
    """The differences, in output order, and the statements sent to read them."""

    database: str
    schemas: int
    differences: tuple[Difference, ...]
    queries: int

    @property
    def drift(self) -> bool:
        return bool(self.differences)


class WrongDatabase(Exception):
    """The connection reached another database than the plan's."""


def verify(connection: Executor, plan: AccessPlan, budget: Budget | None = None) -> Report:
    """Read the live state (one query) and compare it with the plan (and,
    given the stack's connection budget, the server's max_connections with it)."""
    counting = CountingConnection(connection)
    live = read_live_state(counting)
    if live.database != plan.database:
        raise WrongDatabase(
            f"the connection reached database {live.database!r}; the plan is for "
            f"{plan.database!r}: point DATABASE_URL at it"
        )
    differences = compare(plan, live, budget)
    return Report(plan.database, len(plan.schemas), differences, counting.queries)


def compare(
    plan: AccessPlan, live: LiveState, budget: Budget | None = None
) -> tuple[Difference, ...]:
    """Every difference between the plan and the live state, grouped (roles,
    database, then each schema in the plan's order, then extra schemas)."""
    found = _Comparison(plan, live).run()
    if budget is not None and live.max_connections is not None:
        short = budget_drift(budget, live.max_connections)
        if short is not None:
            message, fix = short
            found.append(
                Difference(
                    CONNECTION_BUDGET,
                    DATABASE_GROUP.scope,
                    None,
                    message,
                    fix.as_string(None) + ";",
                )
            )
    order = {ROLES_GROUP: 0, DATABASE_GROUP: 1}
    order.update({in_schema(schema.name): 2 + i for i, schema in enumerate(plan.schemas)})
    kind_order = {kind: index for index, kind in enumerate(KINDS)}
    ranked = sorted(
        enumerate(found),
        key=lambda item: (
            order.get(item[1].group, len(order)),
            item[1].schema or "",
            kind_order[item[1].kind],
            item[0],
        ),
    )
    return tuple(difference for _, difference in ranked)


@dataclass(frozen=True)
class _Target:
    """An object privileges are held on: how messages name it and how SQL does."""

    label: str
    clause: sql.Composable
    group: Group
    column: str | None = None
    owner_clause: sql.Composable | None = None  # ALTER ... OWNER names the exact kind


@dataclass
class _Comparison:
    plan: AccessPlan
    live: LiveState
    found: list[Difference] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan_roles = {role.name for role in self.plan.roles}
        self.plan_schemas = {schema.name for schema in self.plan.schemas}
        self.admins = {
            name
            for name, role in self.live.roles.items()
            if role.is_admin and name not in self.plan_roles
        }
        self.schema_of_role = {
            role.name: role.schema for role in self.plan.roles if role.schema is not None
        }

    def run(self) -> list[Difference]:
        self._schemas()
        self._roles()
        self._memberships()
        self._database()
        self._objects()
        self._default_privileges()
        return self.found

    def _add(
        self,
        kind: str,
        group: Group,
        message: str,
        fix: sql.Composable,
        role: str | None = None,
        privileges: Iterable[str] = (),
    ) -> None:
        rendered = fix.as_string(None) + ";"
        self.found.append(
            Difference(kind, group.scope, group.schema, message, rendered, role, tuple(privileges))
        )

    def _ignored(self, grantee: str, owner: str) -> bool:
        """Rights that are never drift: the owner's, naap_owner's, the admin's."""
        return grantee in (owner, names.OWNER) or grantee in self.admins

    def _who(self, role: str) -> str:
        if role == PUBLIC:
            return "PUBLIC"
        if role in self.plan_roles:
            return role
        return f"{role} (a role outside the plan)"

    # schemas ---------------------------------------------------------------

    def _schemas(self) -> None:
        for schema in self.plan.schemas:
            live = self.live.schemas.get(schema.name)
            name, owner = sql.Identifier(schema.name), sql.Identifier(schema.owner)
            if live is None:
                self._add(
                    MISSING_SCHEMA,
                    in_schema(schema.name),
                    f"schema {schema.name} does not exist",
                    sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(name, owner),
                )
            elif live.owner != schema.owner:
                self._add(
                    SCHEMA_OWNER,
                    in_schema(schema.name),
                    f"schema {schema.name} is owned by {live.owner}, not {schema.owner}",
                    sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(name, owner),
                    role=live.owner,
                )
        for extra in sorted(set(self.live.schemas) - self.plan_schemas):
            # Removing a plugin keeps its schema and data; dropping it is a
            # person's decision (RESTRICT refuses while it holds anything).
            self._add(
                EXTRA_SCHEMA,
                in_schema(extra),
                f"schema {extra} is not in the catalogue (naap-db:plugins); its contents "
                "are not compared",
                sql.SQL("DROP SCHEMA {} RESTRICT").format(sql.Identifier(extra)),
            )

    # roles and memberships -------------------------------------------------

    def _roles(self) -> None:
        with_password = {role.name for role in self.plan.first_logins}
        for role in self.plan.roles:
            name = sql.Identifier(role.name)
            login = "LOGIN" if role.login else "NOLOGIN"
            live = self.live.roles.get(role.name)
            if live is None:
                # Only the logins `pulumi up` generates a password for get one;
                # a group never logs in, a `_b` login waits for its first rotation.
                how = (
                    "`pulumi up` creates it with its generated password"
                    if role.name in with_password
                    else "the first rotation gives it a password"
                    if role.login
                    else "a group: `pulumi up` creates it"
                )
                self._add(
                    MISSING_ROLE,
                    ROLES_GROUP,
                    f"role {role.name} ({login}) does not exist ({how})",
                    sql.SQL("CREATE ROLE {} {}").format(name, sql.SQL(login)),
                    role=role.name,
                )
                continue
            if live.login != role.login:
                self._add(
                    ROLE_ATTRIBUTE,
                    ROLES_GROUP,
                    f"role {role.name} is {'LOGIN' if live.login else 'NOLOGIN'}, "
                    f"the plan says {login}",
                    sql.SQL("ALTER ROLE {} {}").format(name, sql.SQL(login)),
                    role=role.name,
                )
            for attribute, keyword in DENIED_ATTRIBUTES:
                if getattr(live, attribute):
                    self._add(
                        ROLE_ATTRIBUTE,
                        ROLES_GROUP,
                        f"role {role.name} has {keyword}",
                        sql.SQL("ALTER ROLE {} {}").format(name, sql.SQL("NO" + keyword)),
                        role=role.name,
                    )
            for message, fix in limit_drift(role, live, self.plan.database):
                self._add(ROLE_LIMIT, ROLES_GROUP, message, fix, role=role.name)

    def _membership_group(self, group: str, member: str) -> Group:
        """A membership is listed under the schema whose rights it carries."""
        schema = self.schema_of_role.get(group) or self.schema_of_role.get(member)
        return in_schema(schema) if schema is not None else ROLES_GROUP

    def _memberships(self) -> None:
        planned = {(m.member, m.group) for m in self.plan.memberships}
        live: dict[tuple[str, str], LiveMembership] = {}
        rows: dict[tuple[str, str], list[LiveMembership]] = {}
        for membership in self.live.memberships:
            # PostgreSQL 16 keeps one row per grantor: a pair holds the union.
            key = (membership.member, membership.group)
            seen = live.get(key)
            live[key] = membership if seen is None else _union(seen, membership)
            rows.setdefault(key, []).append(membership)
        for membership_plan in self.plan.memberships:
            member, group = membership_plan.member, membership_plan.group
            if (member, group) in live:
                continue
            self._add(
                MISSING_MEMBERSHIP,
                self._membership_group(group, member),
                f"{member} is not a member of {group}",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member)),
                role=member,
            )
        for (member, group), membership in live.items():
            where = self._membership_group(group, member)
            if (member, group) in planned:
                self._planned_membership_options(membership, rows[member, group], where)
                continue
            if member in self.admins or not membership.confers_rights:
                continue
            if member in self.plan_roles or group in self.plan_roles:
                self._add(
                    EXTRA_MEMBERSHIP,
                    where,
                    f"{self._who(member)} is a member of {group} (not in the plan)",
                    _revoke_each(sql.SQL("REVOKE {} FROM {}"), rows[member, group]),
                    role=member,
                )

    def _planned_membership_options(
        self, membership: LiveMembership, rows: Sequence[LiveMembership], where: Group
    ) -> None:
        member, group = sql.Identifier(membership.member), sql.Identifier(membership.group)
        if membership.admin:
            self._add(
                MEMBERSHIP_OPTION,
                where,
                f"{membership.member} is a member of {membership.group} WITH ADMIN OPTION "
                "(may grant it to others)",
                _revoke_each(
                    sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}"), [r for r in rows if r.admin]
                ),
                role=membership.member,
            )
        lacking = [
            option
            for option, value in (("INHERIT", membership.inherit), ("SET", membership.set))
            if value is False
        ]
        if lacking:
            self._add(
                MEMBERSHIP_OPTION,
                where,
                f"{membership.member} is a member of {membership.group} without "
                f"{' and '.join(lacking)}",
                sql.SQL("GRANT {} TO {} WITH {}").format(
                    group,
                    member,
                    sql.SQL(", ").join(sql.SQL(option + " TRUE") for option in lacking),
                ),
                role=membership.member,
            )

    # privileges -------------------------------------------------------------

    def _database(self) -> None:
        # CONNECT belongs to naap_connect alone: a login connects as its
        # member, so CONNECT granted to any other role (a plan role or not)
        # is drift, and so is a missing membership in naap_connect.
        expected: dict[str, set[str]] = {}
        for grant in self.plan.database_grants:
            expected.setdefault(grant.role, set()).update(grant.privileges)
        target = _Target(
            f"database {self.plan.database}",
            sql.SQL("DATABASE {}").format(sql.Identifier(self.plan.database)),
            DATABASE_GROUP,
        )
        # The database's owner is filtered out by the query already.
        self._compare_acl(self.live.database_acl, expected, "", target)

    def _objects(self) -> None:
        expected_schema: dict[str, dict[str, set[str]]] = {}
        for grant in self.plan.grants:
            if grant.schema is not None and grant.object_type == "schema":
                by_role = expected_schema.setdefault(grant.schema, {})
                by_role.setdefault(grant.role, set()).update(grant.privileges)
        # An existing object holds what the default privileges of its schema
        # gave it when naap_owner created it: the plan grants nothing on
        # objects directly (naapdb.plan), so a revoked right, or an object
        # created by another role (no defaults applied), is missing here.
        expected_objects: dict[tuple[str, str], dict[str, set[str]]] = {}
        for schema in self.plan.schemas:
            for (role, object_type), privileges in self.plan.object_privileges(schema.name).items():
                by_role = expected_objects.setdefault((schema.name, object_type), {})
                by_role.setdefault(role, set()).update(privileges)
        for schema in self.plan.schemas:
            live = self.live.schemas.get(schema.name)
            acl = live.acl if live is not None else ()
            owner = live.owner if live is not None else schema.owner
            target = _Target(
                f"schema {schema.name}",
                sql.SQL("SCHEMA {}").format(sql.Identifier(schema.name)),
                in_schema(schema.name),
            )
            self._compare_acl(acl, expected_schema.get(schema.name, {}), owner, target)
        for item in self.live.objects:
            if item.schema not in self.plan_schemas:
                continue
            target = _object_target(item)
            if item.owner != names.OWNER and not item.linked_to_table:
                self._add(
                    OBJECT_OWNER,
                    in_schema(item.schema),
                    f"{target.label} is owned by {item.owner}, not {names.OWNER}",
                    sql.SQL("ALTER {} OWNER TO {}").format(
                        target.owner_clause, sql.Identifier(names.OWNER)
                    ),
                    role=item.owner,
                )
            expected = expected_objects.get((item.schema, item.object_type), {})
            self._compare_acl(item.acl, expected, item.owner, target)
        owners = {(o.schema, o.name): o.owner for o in self.live.objects if o.keyword != "FUNCTION"}
        for column in self.live.columns:
            if column.schema not in self.plan_schemas:
                continue
            table = sql.SQL("TABLE {}.{}").format(
                sql.Identifier(column.schema), sql.Identifier(column.table)
            )
            target = _Target(
                f"column {column.schema}.{column.table}.{column.column}",
                table,
                in_schema(column.schema),
                column=column.column,
            )
            owner = owners.get((column.schema, column.table), names.OWNER)
            self._compare_acl(column.acl, {}, owner, target)

    def _compare_acl(
        self,
        acl: Iterable[AclEntry],
        expected: Mapping[str, set[str]],
        owner: str,
        target: _Target,
    ) -> None:
        held: dict[str, set[str]] = {}
        with_option: dict[str, set[str]] = {}
        for entry in acl:
            held.setdefault(entry.grantee, set()).add(entry.privilege)
            if entry.grantable:
                with_option.setdefault(entry.grantee, set()).add(entry.privilege)
        for role, privileges in expected.items():
            missing = _ordered(privileges - held.get(role, set()))
            if missing:
                self._add(
                    MISSING_GRANT,
                    target.group,
                    f"{role} lacks {', '.join(missing)} on {target.label}",
                    sql.SQL("GRANT {} ON {} TO {}").format(
                        _privileges(missing, target.column), target.clause, _grantee(role)
                    ),
                    role=role,
                    privileges=missing,
                )
        for grantee, privileges in held.items():
            if self._ignored(grantee, owner):
                continue
            allowed = expected.get(grantee, set())
            extra = _ordered(privileges - allowed)
            if extra:
                self._add(
                    EXTRA_GRANT,
                    target.group,
                    f"{self._who(grantee)} has {', '.join(extra)} on {target.label} "
                    "(not in the plan)",
                    sql.SQL("REVOKE {} ON {} FROM {}").format(
                        _privileges(extra, target.column), target.clause, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=extra,
                )
            options = _ordered(with_option.get(grantee, set()) & allowed)
            if options:
                self._add(
                    EXTRA_GRANT,
                    target.group,
                    f"{self._who(grantee)} has {', '.join(options)} on {target.label} "
                    "WITH GRANT OPTION (may pass it on)",
                    sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {}").format(
                        _privileges(options, target.column), target.clause, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=options,
                )

    # default privileges -----------------------------------------------------

    def _default_privileges(self) -> None:
        # (owner, schema or None, object code) -> grantee -> privileges
        expected: dict[tuple[str, str | None, str], dict[str, set[str]]] = {}
        revoked: dict[tuple[str, str | None, str], set[str]] = {}
        for default in self.plan.default_privileges:
            key = (default.owner, default.schema, OBJECT_TYPE_CODES[default.object_type])
            if default.privileges:
                expected.setdefault(key, {}).setdefault(default.role, set()).update(
                    default.privileges
                )
            else:
                revoked.setdefault(key, set()).add(default.role)
        live = {(row.owner, row.schema, row.object_code): row for row in self.live.default_acls}
        keys = list(expected) + [key for key in revoked if key not in expected]
        keys += [key for key in live if key not in expected and key not in revoked]
        for key in keys:
            owner, schema, code = key
            if schema is not None and schema not in self.plan_schemas:
                continue  # inside a schema the plan lacks: that schema is reported
            row = live.get(key)
            held: dict[str, set[str]] = {}
            if row is not None:
                for entry in row.acl:
                    held.setdefault(entry.grantee, set()).add(entry.privilege)
            elif schema is None:
                # No global row: PostgreSQL's built-in defaults apply.
                held = {g: set(p) for g, p in BUILTIN_DEFAULTS.get(code, {}).items()}
            allowed = {g: set(p) for g, p in expected.get(key, {}).items()}
            if schema is None:
                for grantee, privileges in BUILTIN_DEFAULTS.get(code, {}).items():
                    if grantee not in revoked.get(key, set()):
                        allowed.setdefault(grantee, set()).update(privileges)
            self._compare_defaults(owner, schema, code, held, expected.get(key, {}), allowed)

    def _compare_defaults(
        self,
        owner: str,
        schema: str | None,
        code: str,
        held: Mapping[str, set[str]],
        expected: Mapping[str, set[str]],
        allowed: Mapping[str, set[str]],
    ) -> None:
        object_type, plural = DEFAULT_ACL_TYPES.get(code, (code, code))
        where = f"in {schema}" if schema is not None else "in any schema"
        label = f"{object_type}s {owner} creates {where}"
        scope = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(sql.Identifier(owner))
        if schema is not None:
            scope = sql.SQL("{} IN SCHEMA {}").format(scope, sql.Identifier(schema))
        group = in_schema(schema) if schema is not None else DATABASE_GROUP
        kind = sql.SQL(plural)
        for role, privileges in expected.items():
            missing = _ordered(privileges - held.get(role, set()))
            if missing:
                self._add(
                    MISSING_DEFAULT_PRIVILEGE,
                    group,
                    f"{role} does not get {', '.join(missing)} on {label}",
                    sql.SQL("{} GRANT {} ON {} TO {}").format(
                        scope, _privileges(missing), kind, _grantee(role)
                    ),
                    role=role,
                    privileges=missing,
                )
        for grantee, privileges in held.items():
            if self._ignored(grantee, owner):
                continue
            extra = _ordered(privileges - allowed.get(grantee, set()))
            if extra:
                self._add(
                    EXTRA_DEFAULT_PRIVILEGE,
                    group,
                    f"{self._who(grantee)} gets {', '.join(extra)} on {label} (not in the plan)",
                    sql.SQL("{} REVOKE {} ON {} FROM {}").format(
                        scope, _privileges(extra), kind, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=extra,
                )


def _revoke_each(statement: sql.SQL, rows: Sequence[LiveMembership]) -> sql.Composable:
    """`statement` (REVOKE {group} FROM {member}) once per grantor of the
    rows: plain for the bootstrap superuser's, GRANTED BY for any other's,
    so the fix takes back a membership a non-superuser admin granted too."""
    statements = []
    for row in rows:
        revoke = statement.format(sql.Identifier(row.group), sql.Identifier(row.member))
        if row.grantor is not None:
            revoke = sql.SQL("{} GRANTED BY {}").format(revoke, sql.Identifier(row.grantor))
        statements.append(revoke)
    return sql.SQL("; ").join(statements)


def _union(first: LiveMembership, second: LiveMembership) -> LiveMembership:
    def either(a: bool | None, b: bool | None) -> bool | None:
        return None if a is None and b is None else bool(a or b)

    return LiveMembership(
        first.member,
        first.group,
        first.admin or second.admin,
        either(first.inherit, second.inherit),
        either(first.set, second.set),
    )


def _object_target(item: LiveObject) -> _Target:
    qualified = sql.SQL("{}.{}").format(sql.Identifier(item.schema), sql.Identifier(item.name))
    label = f"{item.keyword.lower()} {item.schema}.{item.name}"
    if item.arguments is not None:
        # The identity arguments come from pg_get_function_identity_arguments:
        # PostgreSQL's own rendering of the signature, quoted where needed.
        qualified = sql.SQL("{}({})").format(qualified, sql.SQL(item.arguments))
        label = f"{label}({item.arguments})"
    return _Target(
        label,
        sql.SQL("{} {}").format(sql.SQL(item.grant_keyword), qualified),
        in_schema(item.schema),
        owner_clause=sql.SQL("{} {}").format(sql.SQL(item.keyword), qualified),
    )


def _ordered(privileges: Iterable[str]) -> tuple[str, ...]:
    rank = {privilege: index for index, privilege in enumerate(PRIVILEGE_ORDER)}
    return tuple(sorted(set(privileges), key=lambda p: (rank.get(p, len(rank)), p)))


def _privileges(privileges: Sequence[str], column: str | None = None) -> sql.Composable:
    for privilege in privileges:
        if not PRIVILEGE_WORD.match(privilege):
            raise ValueError(f"unexpected privilege {privilege!r} in the catalog")
    if column is None:
        return sql.SQL(", ").join(sql.SQL(p) for p in privileges)
    return sql.SQL(", ").join(
        sql.SQL("{} ({})").format(sql.SQL(p), sql.Identifier(column)) for p in privileges
    )


def _grantee(role: str) -> sql.Composable:
    """PUBLIC is a keyword; quoted, it would name a role "public"."""
    return sql.SQL("PUBLIC") if role == PUBLIC else sql.Identifier(role)


# --- output -----------------------------------------------------------------


def group_title(group: Group, database: str) -> str:
    if group == ROLES_GROUP:
        return "roles"
    if group == DATABASE_GROUP:
        return f"database {database}"
    return f"schema {group.schema}"


def report_to_text(report: Report) -> str:
    """One line per difference under a header per group, each with its fix."""
    lines: list[str] = []
    current: Group | None = None
    for difference in report.differences:
        if difference.group != current:
            current = difference.group
            lines.append(group_title(current, report.database))
        label = difference.kind.replace("-", " ")
        lines.append(f"  {label}: {difference.message}; fix: {difference.fix}")
    return "".join(line + "\n" for line in lines)


JSON_FORMAT_VERSION = 1


def report_to_dict(report: Report, stack: str) -> dict[str, Any]:
    return {
        "format_version": JSON_FORMAT_VERSION,
        "stack": stack,
        "database": report.database,
        "drift": report.drift,
        "queries": report.queries,
        "differences": [
            {
                "kind": difference.kind,
                "scope": difference.scope,
                "group": group_title(difference.group, report.database),
                "schema": difference.schema,
                "role": difference.role,
                "privileges": list(difference.privileges),
                "message": difference.message,
                "fix": difference.fix,
            }
            for difference in report.differences
        ],
    }


def report_to_json(report: Report, stack: str) -> str:
    return json.dumps(report_to_dict(report, stack), indent=2) + "\n"


__all__ = [
    "KINDS",
    "LIVE_STATE_QUERY",
    "CountingConnection",
    "Difference",
    "LiveState",
    "Report",
    "WrongDatabase",
    "compare",
    "read_live_state",
    "report_to_json",
    "report_to_text",
    "verify",
]

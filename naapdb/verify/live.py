"""The live state `verify` compares: read with ONE catalog query, whatever
the number of schemas (a single JSON document built in SQL), then parsed
into typed data here. Everything else happens in Python (`compare`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

PUBLIC = "public"  # how the query and the plan name the PUBLIC pseudo-role

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

# The ledger, read by a second query where the login may (`ledger_readable`).
LEDGER_QUERY = (
    "SELECT coalesce(json_agg(json_build_array(schema, version, name) "
    "ORDER BY schema, version), '[]'::json) FROM naap_meta.schema_migrations"
)
# Type kinds (pg_type.typtype) and what ALTER ... OWNER names them by; a
# table's row type and array types follow their table or element.
TYPE_KINDS = {"e": "TYPE", "c": "TYPE", "r": "TYPE", "d": "DOMAIN"}

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
            {_acl("coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))", "p.proowner")},
            p.prosecdef
        ) ORDER BY s.nspname, p.proname, p.oid), '[]'::json)
        FROM pg_catalog.pg_proc AS p JOIN user_schemas AS s ON s.oid = p.pronamespace
        WHERE NOT {_extension_member("pg_proc", "p.oid")}),
    'types', (
        SELECT coalesce(json_agg(json_build_array(s.nspname, t.typname, t.typtype,
            pg_catalog.pg_get_userbyid(t.typowner)) ORDER BY s.nspname, t.typname), '[]'::json)
        FROM pg_catalog.pg_type AS t JOIN user_schemas AS s ON s.oid = t.typnamespace
        LEFT JOIN pg_catalog.pg_class AS c ON c.oid = t.typrelid
        WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
          AND NOT {_extension_member("pg_type", "t.oid")}),
    'event_triggers', (
        SELECT coalesce(json_agg(json_build_array(t.evtname, t.evtevent,
            pg_catalog.pg_get_userbyid(t.evtowner)) ORDER BY t.evtname), '[]'::json)
        FROM pg_catalog.pg_event_trigger AS t
        WHERE NOT {_extension_member("pg_event_trigger", "t.oid")}),
    'ledger_readable', EXISTS (
        SELECT FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'naap_meta' AND c.relname = 'schema_migrations'
          AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
          AND pg_catalog.has_table_privilege(c.oid, 'SELECT')),
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
    security_definer: bool = False  # routines: runs with its owner's rights

    @property
    def grant_keyword(self) -> str:
        """GRANT knows only TABLE (views and foreign tables too), SEQUENCE,
        FUNCTION (aggregates too), PROCEDURE, TYPE and DOMAIN."""
        if self.object_type == "table":
            return "TABLE"
        if self.object_type == "sequence":
            return "SEQUENCE"
        if self.object_type == "type":
            return self.keyword
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
class LiveEventTrigger:
    name: str
    event: str
    owner: str


@dataclass(frozen=True)
class LiveLedgerRow:
    """A row of the push's ledger: an applied file."""

    schema: str
    version: int
    name: str


@dataclass(frozen=True)
class LiveState:
    """What the one query (and, where the login may read it, the ledger's) read."""

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
    event_triggers: tuple[LiveEventTrigger, ...] = ()
    ledger: tuple[LiveLedgerRow, ...] | None = None
    """None when the login cannot read the ledger (or no push created it)."""


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
    for schema, name, arguments, kind, owner, acl, definer in document["routines"]:
        keyword = ROUTINE_KINDS.get(kind, "FUNCTION")
        objects.append(
            LiveObject(
                schema,
                name,
                "function",
                keyword,
                owner,
                _entries(acl),
                arguments,
                security_definer=bool(definer),
            )
        )
    for schema, name, kind, owner in document.get("types", ()):
        objects.append(LiveObject(schema, name, "type", TYPE_KINDS[kind], owner, ()))
    ledger = document.get("ledger")
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
        event_triggers=tuple(
            LiveEventTrigger(name, event, owner)
            for name, event, owner in document.get("event_triggers", ())
        ),
        ledger=None
        if ledger is None
        else tuple(LiveLedgerRow(schema, int(version), name) for schema, version, name in ledger),
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


def read_live_state(connection: Executor, ledger: bool = False) -> LiveState:
    """One round trip: the whole catalog state as one JSON document; with
    `ledger`, a second one for the push's ledger where the login may read it."""
    document = dict(_document(connection, LIVE_STATE_QUERY))
    if ledger and document.get("ledger_readable"):
        document["ledger"] = _document(connection, LEDGER_QUERY)
    return parse_live_state(document)


def _document(connection: Executor, query: str) -> Any:
    document = connection.execute(query).fetchone()[0]
    if isinstance(document, str):  # a connection without psycopg's JSON loader
        document = json.loads(document)
    return document

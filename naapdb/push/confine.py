"""What a file may leave behind in its schema, checked inside its own
transaction before it is recorded: a file that breaks a rule is rolled back
and named, and nothing of it stays.

Privilege confines a file first: its session's login (`<schema>_migrator`)
is a member of its schema's owner and of no other owner, so PostgreSQL
itself refuses anything in another schema, the ledger or any other role
(docs/push.md, "The boundary"). What privilege cannot refuse, because an
owner may do it to its own schema, is checked here:

- the file ends as its schema's owner (a `RESET ROLE` or `set_config('role',
  ...)` left the login acting for itself);
- every object of the schema is owned by the schema's owner;
- the schema, its objects and their columns grant rights only to its own
  `_rw`/`_ro` groups, and never WITH GRANT OPTION;
- the owner's (and the login's) default privileges give nothing to anyone
  else, so no object created later leaks either;
- no SECURITY DEFINER function but those the catalogue entry allows by name;
- no role or database setting was written (a login may change its own
  password or settings without any privilege: `ALTER ROLE ... PASSWORD`
  would leave a way into the schema's owner outside the push). PostgreSQL
  offers no read of `pg_authid` to a plain role, but every write to it, or to
  `pg_auth_members`, `pg_db_role_setting` or `pg_database`, holds a
  RowExclusiveLock on that catalog until the transaction ends, which
  `pg_locks` shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from naapdb import names

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class SchemaRules:
    """What the check needs to know of one schema."""

    schema: str
    owner: str
    groups: tuple[str, ...]
    """The only roles its schema and objects may grant rights to."""
    security_definers: tuple[str, ...] = ()

    @classmethod
    def of(cls, schema: str, security_definers: Sequence[str] = ()) -> SchemaRules:
        return cls(
            schema,
            names.schema_owner(schema),
            (names.rw_role(schema), names.ro_role(schema)),
            tuple(security_definers),
        )


# Every kind of object a schema can hold, with its owner column.
_OWNED = (
    ("pg_class", "relnamespace", "relowner", "relname", "relation"),
    ("pg_proc", "pronamespace", "proowner", "proname", "routine"),
    ("pg_type", "typnamespace", "typowner", "typname", "type"),
    ("pg_operator", "oprnamespace", "oprowner", "oprname", "operator"),
    ("pg_collation", "collnamespace", "collowner", "collname", "collation"),
    ("pg_conversion", "connamespace", "conowner", "conname", "conversion"),
    ("pg_opclass", "opcnamespace", "opcowner", "opcname", "operator class"),
    ("pg_opfamily", "opfnamespace", "opfowner", "opfname", "operator family"),
    ("pg_ts_config", "cfgnamespace", "cfgowner", "cfgname", "text search configuration"),
    ("pg_ts_dict", "dictnamespace", "dictowner", "dictname", "text search dictionary"),
    ("pg_statistic_ext", "stxnamespace", "stxowner", "stxname", "statistics object"),
)

_OWNERSHIP = "\n    UNION ALL\n".join(
    f"""    SELECT pg_catalog.format('{label} %I.%I is owned by %s, not %I',
            s.nspname, o.{name}, pg_catalog.pg_get_userbyid(o.{owner}), s.owner_name)
    FROM pg_catalog.{catalog} AS o, s
    WHERE o.{namespace} = s.oid AND o.{owner} <> s.owner"""
    for catalog, namespace, owner, name, label in _OWNED
)


_GRANTEE = """CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                 ELSE pg_catalog.pg_get_userbyid(a.grantee) END
            || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END"""


def _grants(source: str, label: str, acl: str, condition: str, also: str = "false") -> str:
    """Rows naming each ACL entry of `source` to a role outside the schema's
    groups, WITH GRANT OPTION, or matching `also`; the owner's own aside."""
    return f"""    SELECT pg_catalog.format('%s to %s on {label}', a.privilege_type, {_GRANTEE})
    FROM {source}, s, pg_catalog.aclexplode({acl}) AS a
    WHERE {condition} AND a.grantee <> s.owner
      AND (a.grantee <> ALL (s.groups) OR a.is_grantable OR {also})"""


_LOGIN = "(SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = pg_catalog.session_user())"

ESCAPES_QUERY = f"""
WITH s AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl,
           pg_catalog.to_regrole({{owner}})::oid AS owner, {{owner}}::text AS owner_name,
           ARRAY(SELECT r.oid FROM pg_catalog.pg_roles AS r
                 WHERE r.rolname = ANY ({{groups}}::text[])) AS groups
    FROM pg_catalog.pg_namespace AS n WHERE n.nspname = {{schema}}
)
SELECT problem FROM (
    SELECT pg_catalog.format('ends acting as %I, not %I (a RESET ROLE, SET ROLE or '
            'set_config(''role'', ...))', current_user, {{owner}})
    WHERE current_user <> {{owner}}
    UNION ALL
    SELECT pg_catalog.format('schema %I is owned by %s, not %I', s.nspname,
            pg_catalog.pg_get_userbyid(s.nspowner), s.owner_name)
    FROM s WHERE s.nspowner <> s.owner
    UNION ALL
{_OWNERSHIP}
    UNION ALL
{
    _grants(
        "pg_catalog.pg_namespace AS o",
        "the schema",
        "s.nspacl",
        "o.oid = s.oid",
        also="a.privilege_type <> 'USAGE'",
    )
}
    UNION ALL
{_grants("pg_catalog.pg_class AS o", "a relation", "o.relacl", "o.relnamespace = s.oid")}
    UNION ALL
{
    _grants(
        "pg_catalog.pg_attribute AS t JOIN pg_catalog.pg_class AS o ON o.oid = t.attrelid",
        "a column",
        "t.attacl",
        "o.relnamespace = s.oid AND t.attacl IS NOT NULL",
    )
}
    UNION ALL
{
    _grants(
        "pg_catalog.pg_proc AS o",
        "a routine",
        "coalesce(o.proacl, pg_catalog.acldefault('f', o.proowner))",
        "o.pronamespace = s.oid",
    )
}
    UNION ALL
{
    _grants(
        "pg_catalog.pg_default_acl AS o",
        "what it creates later (default privileges)",
        "o.defaclacl",
        f"o.defaclrole IN (s.owner, {_LOGIN})",
    )
}
    UNION ALL
    SELECT pg_catalog.format('default privileges of %I, the push login itself',
            pg_catalog.session_user())
    FROM pg_catalog.pg_default_acl AS o WHERE o.defaclrole = {_LOGIN}
    UNION ALL
    SELECT pg_catalog.format('SECURITY DEFINER function %I.%I (allow it by name in its '
            'catalogue entry''s securityDefiners)', s.nspname, o.proname)
    FROM pg_catalog.pg_proc AS o, s
    WHERE o.pronamespace = s.oid AND o.prosecdef
      AND o.proname <> ALL ({{definers}}::text[])
    UNION ALL
    SELECT pg_catalog.format('writes %s (ALTER ROLE, GRANT of a role or a database '
            'setting)', l.relation::pg_catalog.regclass)
    FROM pg_catalog.pg_locks AS l
    WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
      AND l.mode = 'RowExclusiveLock'
      AND l.relation IN ('pg_catalog.pg_authid'::pg_catalog.regclass,
                         'pg_catalog.pg_auth_members'::pg_catalog.regclass,
                         'pg_catalog.pg_db_role_setting'::pg_catalog.regclass,
                         'pg_catalog.pg_database'::pg_catalog.regclass)
) AS found (problem)
LIMIT 10
"""


def escapes(connection: psycopg.Connection[Any], rules: SchemaRules) -> list[str]:
    """What the file left that breaks its schema's rules (empty: nothing),
    read in its own transaction, with a search path no file can shadow."""
    from psycopg import sql

    connection.execute("SET LOCAL search_path TO pg_catalog, pg_temp")
    # Composed, not bound: the query's own format() patterns use `%`.
    query = sql.SQL(ESCAPES_QUERY).format(
        schema=sql.Literal(rules.schema),
        owner=sql.Literal(rules.owner),
        groups=sql.Literal(list(rules.groups)),
        definers=sql.Literal(list(rules.security_definers)),
    )
    return [str(row[0]) for row in connection.execute(query).fetchall()]

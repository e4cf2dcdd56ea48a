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

from naapdb.verify.compare import (
    CONNECTION_BUDGET,
    KINDS,
    MISSING_ROLE,
    MISSING_SCHEMA,
    Difference,
    Report,
    WrongDatabase,
    compare,
    verify,
)
from naapdb.verify.live import (
    LIVE_STATE_QUERY,
    CountingConnection,
    LiveState,
    parse_live_state,
    read_live_state,
)
from naapdb.verify.report import report_to_dict, report_to_json, report_to_sql, report_to_text

__all__ = [
    "CONNECTION_BUDGET",
    "KINDS",
    "LIVE_STATE_QUERY",
    "MISSING_ROLE",
    "MISSING_SCHEMA",
    "CountingConnection",
    "Difference",
    "LiveState",
    "Report",
    "WrongDatabase",
    "compare",
    "parse_live_state",
    "read_live_state",
    "report_to_dict",
    "report_to_json",
    "report_to_sql",
    "report_to_text",
    "verify",
]

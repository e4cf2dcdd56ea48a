"""The drift check: compares the live database with the access plan.

Its parts: `live` reads the live state with ONE catalog query, whatever the
number of schemas (a single JSON document built in SQL), and the push's
ledger with one more where the login may read it; `compare` (schemas,
roles, memberships) and `privileges` (ACLs, default privileges, owners,
SECURITY DEFINER functions, event triggers, the ledger) find the
differences against `naapdb.plan`, linear in what was read; `model` names
them; `report` prints them as text, JSON or a psql script.

What counts as drift (each becomes one `Difference` with the SQL that fixes it):

- a schema of the plan missing, or not owned by its owner (`<schema>_owner`,
  `naap_owner` for `naap_meta`); a schema the plan lacks (system and
  extension schemas aside);
- a role of the plan missing, with the wrong LOGIN, or holding SUPERUSER,
  CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS; a login's connection
  limit or timeouts not the plan's limits (`naapdb.verify.limits`);
- a membership of the plan missing (or without INHERIT/SET, PostgreSQL 16+),
  or held WITH ADMIN OPTION; any other membership a plan role holds, or that
  gives a role outside the plan a plan role's rights;
- a privilege the plan grants missing on the database (CONNECT, for
  `naap_connect` only) or a schema; on any existing object of a schema, a
  privilege missing that its owner's default privileges give
  (`AccessPlan.object_privileges`); any other privilege held by `PUBLIC`, a
  plan role, or a role outside the plan, on the database, a plan schema,
  its objects or their columns, and grant options nobody was given;
- a default privilege of the plan missing; any other default privilege;
  `PUBLIC`'s built-in EXECUTE on the functions an owner creates;
- an object (relation, routine, type) of a plan schema not owned by its
  schema's owner; a SECURITY DEFINER function its catalogue entry does not
  allow by name; any event trigger; a ledger row of a catalogue schema that
  names no migration file.

Not drift: an object owner's own privileges; the server's admin roles (roles
outside the plan with SUPERUSER or CREATEROLE), their memberships and
privileges; objects that belong to an extension; what lies inside a schema
the plan lacks (the schema itself is reported). A NULL ACL is read as the
built-in default (`acldefault`), so `PUBLIC`'s implicit EXECUTE is seen.
"""

from naapdb.verify.compare import compare, verify
from naapdb.verify.live import (
    LIVE_STATE_QUERY,
    CountingConnection,
    LiveState,
    parse_live_state,
    read_live_state,
)
from naapdb.verify.model import (
    CONNECTION_BUDGET,
    KINDS,
    MISSING_ROLE,
    MISSING_SCHEMA,
    Difference,
    Report,
    WrongDatabase,
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

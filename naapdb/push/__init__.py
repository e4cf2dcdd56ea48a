"""The schema push: applies the versioned SQL files `migrations/<schema>/NNNN_description.sql`
to the live database, `public` first and then in the catalogue's order, each file once.

What it decides, and why (docs/push.md tells the whole story):

- Each schema's files run on a connection of that schema's own push login
  (`<schema>_migrator`, a member of `<schema>_owner` and of no other owner),
  each file in its own transaction with `SET LOCAL ROLE <schema>_owner` and
  the schema alone on the `search_path`: what it creates is owned by its
  schema's owner, the access layer's default privileges give the plugin
  roles their rights at once, and PostgreSQL refuses anything it tries
  beyond its schema (`apply`). What an owner may do to its own schema but a
  file must not (hand rights to others, SECURITY DEFINER, alter its login)
  is checked before the file commits, and rolls it back (`confine`).
- Applied files are recorded in the ledger `naap_meta.schema_migrations`,
  owned by `naap_owner`, through a recorder that records for the session's
  own schema only, in the same transaction as the file: a file is either
  applied and recorded, or neither (`ledger`).
- The whole push holds one session advisory lock on the orchestrating
  connection (`naap_migrator`), which runs no file: two pushes at once
  serialize and the second finds nothing left to do.
- Nothing runs unless every check passes first: a changed or missing applied
  file, a file for a schema outside the catalogue, a bad file name, a
  duplicate or out-of-order version each stop the push with one line naming
  the file and the fix (`PushError`, `files`).
- The connection string is never printed: errors carry the file, the SQLSTATE
  and the server's message only (`connection`).
"""

from __future__ import annotations

from naapdb.push.apply import LOCK_KEY, Applied, PushResult, hold_lock, push
from naapdb.push.connection import (
    MIGRATOR_URL,
    SECRET_ID_VARIABLE,
    resolve_database_url,
    schema_connector,
    url_from_secret,
)
from naapdb.push.files import (
    DEFAULT_SOURCE,
    MIGRATION_FILE,
    STACK_VARIABLE,
    LedgerEntry,
    Migration,
    PushError,
    discover,
    pending,
    project_catalog,
    resolve_catalog,
    stack_name,
)
from naapdb.push.ledger import LEDGER
from naapdb.push.sqltext import forbidden_statement, statements

__all__ = [
    "DEFAULT_SOURCE",
    "LEDGER",
    "LOCK_KEY",
    "MIGRATION_FILE",
    "MIGRATOR_URL",
    "SECRET_ID_VARIABLE",
    "STACK_VARIABLE",
    "Applied",
    "LedgerEntry",
    "Migration",
    "PushError",
    "PushResult",
    "discover",
    "forbidden_statement",
    "hold_lock",
    "pending",
    "project_catalog",
    "push",
    "resolve_catalog",
    "resolve_database_url",
    "schema_connector",
    "stack_name",
    "statements",
    "url_from_secret",
]

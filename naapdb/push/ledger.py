"""The push's ledger, `naap_meta.schema_migrations`, and its recorder.

The ledger and `naap_meta` belong to `naap_owner`, which no schema's push
login can become. A file's own transaction runs on its schema's login, so it
cannot write the ledger directly; it is recorded through
`naap_meta.record_migration`, a SECURITY DEFINER function owned by
`naap_owner` and executable by `naap_recorder` (every push login), which:

- records for one schema only: the one whose owner the session's login is
  a member of (`session_user`, which nothing in a file can change);
- refuses unless that schema's rows number what the push read before the
  file ran, so a file that called the recorder itself (a forged row, even
  for its own schema) makes its own recording fail and rolls back.

The orchestrating login (`naap_migrator`, a member of `naap_owner`) creates
both on the first push that has something to apply, and replaces the
recorder when its definition here changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from naapdb import names

if TYPE_CHECKING:
    import psycopg

LEDGER = f"{names.META_SCHEMA}.{names.LEDGER_TABLE}"
RECORDER = f"{names.META_SCHEMA}.{names.RECORDER_FUNCTION}"

CREATE_LEDGER = f"""
CREATE TABLE IF NOT EXISTS {LEDGER} (
    schema text NOT NULL,
    version integer NOT NULL CHECK (version > 0),
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    PRIMARY KEY (schema, version))
"""

RECORDER_ARGUMENTS = "integer, text, text, integer, bigint"
RECORDER_BODY = f"""
DECLARE
    target text;
    schemas bigint;
BEGIN
    -- The one schema whose owner the session's login is a member of.
    SELECT pg_catalog.min(n.nspname), pg_catalog.count(DISTINCT n.oid)
      INTO target, schemas
      FROM pg_catalog.pg_auth_members AS m
      JOIN pg_catalog.pg_namespace AS n ON n.nspowner = m.roleid
     WHERE m.member = (SELECT r.oid FROM pg_catalog.pg_roles AS r
                        WHERE r.rolname = pg_catalog.session_user())
       AND n.nspname <> '{names.META_SCHEMA}';
    IF schemas <> 1 THEN
        RAISE EXCEPTION 'naap-db: % is not the push login of one schema',
            pg_catalog.session_user() USING ERRCODE = '42501';
    END IF;
    IF (SELECT pg_catalog.count(*) FROM {LEDGER} AS l WHERE l.schema = target)
        <> p_applied_before THEN
        RAISE EXCEPTION 'naap-db: the ledger of % changed while the file ran', target
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO {LEDGER} (schema, version, name, checksum, duration_ms)
    VALUES (target, p_version, p_name, p_checksum, p_duration_ms);
    RETURN target;
END
"""

CREATE_RECORDER = f"""
CREATE OR REPLACE FUNCTION {RECORDER}(
    p_version integer, p_name text, p_checksum text, p_duration_ms integer,
    p_applied_before bigint)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $recorder${RECORDER_BODY}$recorder$
"""

RECORD = f"SELECT {RECORDER}(%s, %s, %s, %s, %s)"

# The recorder's source as PostgreSQL keeps it, or NULL when it is missing.
RECORDER_SOURCE = (
    "SELECT p.prosrc FROM pg_catalog.pg_proc AS p "
    "JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace "
    f"WHERE n.nspname = '{names.META_SCHEMA}' AND p.proname = '{names.RECORDER_FUNCTION}'"
)


def ensure(execute: Any) -> None:
    """Create the ledger and the recorder (as `naap_owner`, inside the
    caller's transaction) unless they exist as defined here."""
    execute(CREATE_LEDGER)
    row = execute(RECORDER_SOURCE).fetchone()
    if row is None or row[0] != RECORDER_BODY:
        execute(CREATE_RECORDER)


def record(
    connection: psycopg.Connection[Any],
    version: int,
    name: str,
    checksum: str,
    duration_ms: int,
    applied_before: int,
) -> str:
    """Record the file on its schema's connection; the schema it was
    recorded for (the recorder's choice, never the caller's)."""
    row = connection.execute(
        RECORD, (version, name, checksum, duration_ms, applied_before)
    ).fetchone()
    assert row is not None
    return str(row[0])

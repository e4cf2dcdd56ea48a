"""Applying the files: the push lock and the ledger on the orchestrating
connection (`naap_migrator`), each schema's files on a connection of that
schema's own push login (`<schema>_migrator`), each file in its own
transaction, checked (`naapdb.push.confine`) and recorded
(`naapdb.push.ledger`) before it commits.

No file ever runs on the orchestrating connection: a file's session can
become its schema's owner and nothing else, so what PostgreSQL refuses it,
it cannot reach by any route (SET ROLE, `set_config`, a DO block's EXECUTE,
a trigger that fires later in the transaction).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from naapdb import names
from naapdb.catalog import Catalog
from naapdb.connection import one_line
from naapdb.push import confine, ledger
from naapdb.push.files import LedgerEntry, Migration, PushError, pending
from naapdb.push.sqltext import statements

if TYPE_CHECKING:
    import psycopg

# One fixed key for every push of the database: the bytes of "naappush".
LOCK_KEY = int.from_bytes(b"naappush", "big")

SchemaConnector = Callable[[str], contextlib.AbstractContextManager["psycopg.Connection[Any]"]]
"""Opens an autocommit connection as a schema's push login."""


@dataclass(frozen=True)
class Applied:
    """A file the push applied, and how long it took."""

    migration: Migration
    duration_ms: int


@dataclass(frozen=True)
class PushResult:
    """What a push did (or, dry, would do) and how many statements it sent."""

    applied: tuple[Applied, ...]
    pending: tuple[Migration, ...]
    statements: int
    dry_run: bool = False


class _Session:
    """A connection of the push, counting the statements it sends."""

    def __init__(self, connection: psycopg.Connection[Any], counter: list[int]) -> None:
        self.connection = connection
        self._counter = counter

    def execute(self, query: Any, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        self._counter[0] += 1
        return self.connection.execute(query, params)


def push(
    connection: psycopg.Connection[Any],
    migrations: Sequence[Migration],
    catalog: Catalog,
    *,
    connect_schema: SchemaConnector | None = None,
    dry_run: bool = False,
    on_applied: Callable[[Applied], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    stack: str | None = None,
) -> PushResult:
    """Apply what the ledger lacks, under the push lock. `connection` is the
    orchestrator's (autocommit); `connect_schema` opens a schema's push
    login's. A dry run takes no lock, opens no other login, changes nothing.
    `stack` names the stack in the way back a refusal gives."""
    counter = [0]
    session = _Session(connection, counter)
    if not dry_run:
        _lock(session, on_wait)
    rows = _read_ledger(session, stack)
    todo = pending(migrations, rows or (), catalog)
    if dry_run or not todo:
        return PushResult((), todo, counter[0], dry_run)
    if connect_schema is None:
        raise PushError("the push needs each schema's push login to apply files")
    _ensure_ledger(session)
    recorded: dict[str, int] = {}
    for row in rows or ():
        recorded[row.schema] = recorded.get(row.schema, 0) + 1
    applied: list[Applied] = []
    for schema, files in _by_schema(todo):
        entry = catalog.entry_of(schema)
        rules = confine.SchemaRules.of(schema, entry.security_definers if entry else ())
        with _schema_session(connect_schema, schema, counter) as schema_session:
            for migration in files:
                done = _apply(schema_session, migration, rules, recorded.get(schema, 0))
                recorded[schema] = recorded.get(schema, 0) + 1
                applied.append(done)
                if on_applied is not None:
                    on_applied(done)
    return PushResult(tuple(applied), todo, counter[0])


def _by_schema(todo: Sequence[Migration]) -> Iterator[tuple[str, list[Migration]]]:
    """The files grouped by schema, in push order (`todo` already is)."""
    group: list[Migration] = []
    for migration in todo:
        if group and group[0].schema != migration.schema:
            yield group[0].schema, group
            group = []
        group.append(migration)
    if group:
        yield group[0].schema, group


@contextlib.contextmanager
def _schema_session(
    connect_schema: SchemaConnector, schema: str, counter: list[int]
) -> Iterator[_Session]:
    import psycopg

    from naapdb.connection import ConnectionError_

    login = names.schema_migrator(schema)
    try:
        context = connect_schema(schema)
        connection = context.__enter__()
    except (psycopg.OperationalError, ConnectionError_) as error:
        raise PushError(
            f"cannot log in as {login}, the push login of schema {schema}: "
            f"{one_line(error)}; check that NAAPDB_PUSH_KEY is this stack's push key and that "
            "`pulumi up` has created the login"
        ) from None
    try:
        yield _Session(connection, counter)
    finally:
        context.__exit__(None, None, None)


def hold_lock(
    connection: psycopg.Connection[Any], on_wait: Callable[[], None] | None = None
) -> None:
    """Take the push lock for the rest of the session (Prisma mode holds it on
    a connection of its own while Prisma runs)."""
    _lock(_Session(connection, [0]), on_wait)


def _lock(session: _Session, on_wait: Callable[[], None] | None) -> None:
    """Take the push lock; tell the caller when it has to wait for another push."""
    row = session.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    if row and row[0]:
        return
    if on_wait is not None:
        on_wait()
    session.execute("SELECT pg_catalog.pg_advisory_lock(%s)", (LOCK_KEY,))


def _read_ledger(session: _Session, stack: str | None = None) -> list[LedgerEntry] | None:
    """The ledger in one query, or None when no push has created it yet."""
    import psycopg

    query = f"SELECT schema, version, name, checksum FROM {ledger.LEDGER}"
    try:
        rows = session.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.errors.InsufficientPrivilege:
        owner = _ledger_owner(session)
        if owner is not None and owner != names.OWNER:
            raise PushError(
                f"cannot read {ledger.LEDGER}: it is owned by {owner}, not {names.OWNER} "
                "(`pulumi destroy` hands the objects it keeps to the server's admin); "
                "`pulumi up` hands them back, or run "
                f"`bin/naapdb adopt --stack {stack or 'STACK'}` as the admin"
            ) from None
        raise PushError(
            f"cannot read {ledger.LEDGER}: DATABASE_URL's role is not the migrator; "
            f"the push runs as {names.MIGRATOR} (a member of {names.OWNER})"
        ) from None
    return [LedgerEntry(*row) for row in rows]


def _ledger_owner(session: _Session) -> str | None:
    """Who owns the ledger table (None when that cannot be read either)."""
    import psycopg

    try:
        row = session.execute(
            "SELECT pg_catalog.pg_get_userbyid(relowner) FROM pg_catalog.pg_class"
            " WHERE oid = pg_catalog.to_regclass(%s)",
            (ledger.LEDGER,),
        ).fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def _act_as(session: _Session, role: str, schema: str) -> None:
    from psycopg import sql

    session.execute(
        sql.SQL("SET LOCAL ROLE {}; SET LOCAL search_path TO {}").format(
            sql.Identifier(role), sql.Identifier(schema)
        )
    )


def _ensure_ledger(session: _Session) -> None:
    """The ledger and its recorder, created as naap_owner where missing."""
    import psycopg

    try:
        with session.connection.transaction():
            _act_as(session, names.OWNER, names.META_SCHEMA)
            ledger.ensure(session.execute)
    except psycopg.errors.InvalidSchemaName:
        raise PushError(
            f"schema {names.META_SCHEMA} does not exist: run `pulumi up` first, "
            "the access layer creates it"
        ) from None
    except psycopg.errors.InsufficientPrivilege as error:
        raise PushError(
            f"{one_line(error)}; the push must run as {names.MIGRATOR} "
            f"(a member of {names.OWNER}), check DATABASE_URL's user"
        ) from None


def _apply(
    session: _Session, migration: Migration, rules: confine.SchemaRules, applied_before: int
) -> Applied:
    """One file on its schema's connection, in its own transaction: run as
    the schema's owner, checked, and recorded in the same transaction."""
    import psycopg
    from psycopg import pq

    connection = session.connection
    failure: psycopg.Error | None = None
    try:
        with connection.transaction():
            _act_as(session, rules.owner, migration.schema)
            started = time.perf_counter()
            try:
                session.execute(migration.sql)
            except psycopg.Error as error:
                failure = error
                raise
            duration_ms = round((time.perf_counter() - started) * 1000)
            if connection.info.transaction_status != pq.TransactionStatus.INTRANS:
                raise PushError(
                    f"{migration.label}: ends the push's transaction (COMMIT/ROLLBACK); "
                    "remove transaction control, each file already runs in its own"
                )
            # Deferred triggers fire now, inside what is checked, not at
            # COMMIT after the check.
            session.execute("SET CONSTRAINTS ALL IMMEDIATE")
            problems = confine.escapes(connection, rules)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                raise PushError(
                    f"{migration.label}: {problems[0]}{more}; a file may change only its own "
                    f"schema, as {rules.owner}: rolled back, nothing of it stays"
                )
            # The recorder is the login's to call (naap_recorder), not the owner's.
            session.execute("RESET ROLE")
            schema = ledger.record(
                connection,
                migration.version,
                migration.file_name,
                migration.checksum,
                duration_ms,
                applied_before,
            )
            if schema != migration.schema:
                raise PushError(
                    f"{migration.label}: the ledger recorded it for {schema}; its login "
                    f"{names.schema_migrator(migration.schema)} is not {migration.schema}'s alone"
                )
    except psycopg.Error as error:
        if failure is not None:
            raise PushError(_failure(migration, failure, _locate(session, migration))) from None
        raise PushError(f"{migration.label}: {one_line(error)}; rolled back") from None
    return Applied(migration, duration_ms)


def _locate(session: _Session, migration: Migration) -> tuple[int, int] | None:
    """Where a failing file fails, as (line, column), when PostgreSQL gave no
    position (errors found while executing, e.g. "already exists"): the file
    is run again statement by statement in a transaction that is always
    rolled back, up to the statement that fails."""
    import psycopg

    connection = session.connection
    try:
        with connection.transaction(force_rollback=True):
            _act_as(session, names.schema_owner(migration.schema), migration.schema)
            for start, end in statements(migration.sql):
                try:
                    session.execute(migration.sql[start:end])
                except psycopg.Error as error:
                    position = error.diag.statement_position
                    offset = int(position) - 1 if position and position.isdigit() else 0
                    return _line_column(migration.sql, start + offset + 1)
    except psycopg.Error:
        return None
    return None


def _failure(migration: Migration, error: psycopg.Error, located: tuple[int, int] | None) -> str:
    """`file:line:column: message [SQLSTATE]; rolled back` from the server's report."""
    diag = error.diag
    where = migration.label
    position = diag.statement_position
    if position and position.isdigit():
        located = _line_column(migration.sql, int(position))
    if located is not None:
        where += f":{located[0]}:{located[1]}"
    state = f" [{diag.sqlstate}]" if diag.sqlstate else ""
    detail = f" ({one_line(diag.message_detail)})" if diag.message_detail else ""
    message = diag.message_primary or str(error)
    return f"{where}: {one_line(message)}{detail}{state}; rolled back, nothing after it ran"


def _line_column(text: str, position: int) -> tuple[int, int]:
    """PostgreSQL reports a 1-based character offset into the query text."""
    before = text[: max(position - 1, 0)]
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return line, column

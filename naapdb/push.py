"""The schema push: applies the versioned SQL files `migrations/<schema>/NNNN_description.sql`
to the live database, `public` first and then in the catalogue's order, each file once.

What it decides, and why:

- Every file runs in its own transaction with `SET LOCAL ROLE naap_owner`, so whatever
  it creates is owned by `naap_owner` (whichever login ran the push) and the access
  layer's default privileges give the plugin roles their rights at once. The
  transaction's `search_path` is the file's schema alone, so an unqualified
  `CREATE TABLE` lands where the file lives, never in `public` by accident.
- Applied files are recorded in the ledger `naap_meta.schema_migrations` (created on
  the first push, owned by `naap_owner`) in the same transaction as the file itself:
  a file is either applied and recorded, or neither.
- The whole push holds one session advisory lock, so two pushes at once serialize and
  the second finds nothing left to do.
- Nothing runs unless every check passes first: a changed or missing applied file, a
  file for a schema outside the catalogue, a bad file name, a duplicate or out-of-order
  version each stop the push with one line naming the file and the fix (`PushError`).
- The connection string is never printed: errors carry the file, the SQLSTATE and the
  server's message only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from naapdb import names, trust
from naapdb.catalog import CATALOG_KEY, Catalog, parse_catalog
from naapdb.connection import DATABASE_URL, ConnectionError_, one_line
from naapdb.errors import ConfigError
from naapdb.project import PROJECT_FILE, find_project_root, project_value, read_yaml

if TYPE_CHECKING:
    import psycopg

MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<description>[a-z0-9][a-z0-9_]*)\.sql$")
LEDGER_TABLE = "schema_migrations"
LEDGER = f"{names.META_SCHEMA}.{LEDGER_TABLE}"
# One fixed key for every push of the database: the bytes of "naappush".
LOCK_KEY = int.from_bytes(b"naappush", "big")
SECRET_ID_VARIABLE = "NAAPDB_DATABASE_SECRET_ID"
STACK_VARIABLE = "NAAPDB_STACK"
DEFAULT_SOURCE = "migrations"


class PushError(Exception):
    """The push stopped before or while applying a file: one line, safe to
    print (it names files and PostgreSQL messages, never the connection)."""


@dataclass(frozen=True)
class Migration:
    """One migration file: `schema`/`NNNN_description.sql`."""

    schema: str
    version: int
    file_name: str
    path: Path
    checksum: str
    sql: str

    @property
    def label(self) -> str:
        """The file as people see it, e.g. `migrations/public/0001_core.sql`."""
        return self.path.as_posix()


@dataclass(frozen=True)
class LedgerEntry:
    """One row of `naap_meta.schema_migrations`: an applied file."""

    schema: str
    version: int
    name: str
    checksum: str


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


# ---------------------------------------------------------------- the catalogue


def resolve_catalog(stack: str | None, root: Path | None = None) -> Catalog:
    """The catalogue the push orders schemas by: the stack's (`--stack`, or
    `NAAPDB_STACK`), else the project-level one of `Pulumi.yaml`, which every
    stack inherits (read alone, so a push needs no stack file)."""
    root = root or find_project_root()
    stack = stack_name(stack)
    if stack:
        from naapdb import stackfiles

        return stackfiles.load_stack_settings(stack, root).catalog
    return project_catalog(root)


def stack_name(stack: str | None) -> str | None:
    """The stack whose settings the push follows: `--stack`, else `NAAPDB_STACK`."""
    return stack or os.environ.get(STACK_VARIABLE) or None


def project_catalog(root: Path) -> Catalog:
    """The project-level catalogue of `Pulumi.yaml`."""
    document = read_yaml(root / PROJECT_FILE)
    config = document.get("config") if isinstance(document, Mapping) else None
    if not isinstance(config, Mapping):
        raise ConfigError(f"{PROJECT_FILE}: config", f"must declare {CATALOG_KEY}")
    raw = config.get(CATALOG_KEY, config.get(CATALOG_KEY.partition(":")[2]))
    return parse_catalog(project_value(raw), CATALOG_KEY)


# ---------------------------------------------------------------- the files


def discover(source: Path, catalog: Catalog) -> tuple[Migration, ...]:
    """Every migration under `source`, in push order (`public` first, then the
    catalogue's order; by version within a schema). Raises `PushError` on a
    directory that is not a catalogue schema, a bad file name, a duplicate
    version or a file that is not UTF-8."""
    if not source.is_dir():
        raise PushError(f"{source}: no such directory; point --source at the migrations")
    order = catalog.push_order()
    by_schema: dict[str, list[Migration]] = {}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            by_schema[entry.name] = _schema_files(entry, order)
        elif entry.suffix == ".sql":
            raise PushError(
                f"{entry}: a migration must live in its schema's directory, "
                f"e.g. {source / names.PUBLIC / entry.name}"
            )
    return tuple(m for schema in order for m in by_schema.get(schema, ()))


def _schema_files(directory: Path, order: Sequence[str]) -> list[Migration]:
    schema = directory.name
    if schema == names.META_SCHEMA:
        raise PushError(
            f"{directory}: {schema} holds the push's own ledger; no migration goes there"
        )
    if schema not in order:
        raise PushError(
            f"{directory}: schema {schema} is not in the catalogue ({CATALOG_KEY}); "
            "add its plugin to Pulumi.yaml or move the files"
        )
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        match = MIGRATION_FILE.match(path.name)
        if not match or not path.is_file():
            raise PushError(
                f"{path}: not a migration file name; use NNNN_description.sql "
                "(four digits, lower-case letters, digits and underscores), "
                "e.g. 0001_create_posts.sql"
            )
        version = int(match["version"])
        if version == 0:
            raise PushError(f"{path}: versions start at 0001")
        if version in migrations:
            raise PushError(
                f"{path}: version {match['version']} is also {migrations[version].file_name}; "
                "give each file of a schema its own version"
            )
        migrations[version] = _read(schema, version, path)
    return [migrations[version] for version in sorted(migrations)]


def _read(schema: str, version: int, path: Path) -> Migration:
    content = path.read_bytes()
    try:
        sql_text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PushError(f"{path}: is not UTF-8 (byte {error.start})") from None
    forbidden = forbidden_statement(sql_text)
    if forbidden is not None:
        line, statement = forbidden
        raise PushError(
            f"{path}:{line}: {statement} is not allowed in a migration: each file already "
            f"runs in its own transaction as {names.OWNER}; remove it"
        )
    return Migration(
        schema=schema,
        version=version,
        file_name=path.name,
        path=path,
        checksum=hashlib.sha256(content).hexdigest(),
        sql=sql_text,
    )


def pending(
    migrations: Sequence[Migration], ledger: Iterable[LedgerEntry], catalog: Catalog
) -> tuple[Migration, ...]:
    """The files still to apply, after checking the applied ones are intact.

    Ledger rows of a schema no longer in the catalogue are left alone: removing a
    plugin keeps its schema and its history. Raises `PushError` on the first
    applied file that changed, was renamed or is missing, or on a new file
    older than what its schema already applied."""
    schemas = set(catalog.schemas)
    files = {(m.schema, m.version): m for m in migrations}
    latest: dict[str, int] = {}
    source = migrations[0].path.parent.parent if migrations else None
    for row in sorted(ledger, key=lambda r: (r.schema, r.version)):
        if row.schema not in schemas:
            continue
        latest[row.schema] = max(latest.get(row.schema, 0), row.version)
        migration = files.pop((row.schema, row.version), None)
        if migration is None:
            where = f"{source}/{row.schema}/{row.name}" if source else f"{row.schema}/{row.name}"
            raise PushError(
                f"{where}: was applied ({row.checksum[:12]}) but the file is missing; "
                "restore it: applied migrations stay in the tree for good"
            )
        if migration.file_name != row.name:
            raise PushError(
                f"{migration.label}: version {row.version:04d} of {row.schema} was applied as "
                f"{row.name}; restore that name (applied migrations are never renamed)"
            )
        if migration.checksum != row.checksum:
            raise PushError(
                f"{migration.label}: changed since it was applied (checksum {row.checksum[:12]} "
                f"-> {migration.checksum[:12]}); restore it and put the change in a new file"
            )
    todo = [m for m in migrations if (m.schema, m.version) in files]
    for migration in todo:
        applied = latest.get(migration.schema, 0)
        if migration.version < applied:
            raise PushError(
                f"{migration.label}: is older than {migration.schema}'s applied version "
                f"{applied:04d}; renumber it after {applied:04d}"
            )
    return tuple(todo)


_SQL_SKIP = re.compile(
    r"""
    --[^\n]*                                  # line comment
  | /\*(?:[^*]|\*(?!/))*\*/                   # block comment (not nested)
  | '(?:[^']|'')*'                            # string
  | "(?:[^"]|"")*"                            # quoted identifier
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)  # dollar quote opening
    """,
    re.VERBOSE,
)
_WORD = re.compile(r"[A-Za-z_]+")
_ATOMIC_BODY = re.compile(r"\bBEGIN\s+ATOMIC\b", re.IGNORECASE)
# Statements that would end the push's transaction.
_TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"})


def statements(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each statement of `text`, split at the semicolons
    that end one: those in comments, literals, dollar-quoted bodies and
    `BEGIN ATOMIC ... END` function bodies do not."""
    return _statements_in(_blank_out(text))


def _statements_in(code: str) -> list[tuple[int, int]]:
    """`statements` of text whose comments and literals are already blanked out."""
    found: list[tuple[int, int]] = []
    start, atomic = 0, False
    for match in re.finditer(";", code):
        piece = code[start : match.start()]
        if not atomic and _ATOMIC_BODY.search(piece):
            atomic = True
        if atomic:
            # The body's statements end with `;`; the body itself with `END;`.
            since = code[code.rfind(";", 0, match.start()) + 1 : match.start()]
            if [word.upper() for word in _WORD.findall(since)[:1]] != ["END"]:
                continue
            atomic = False
        if piece.strip():
            found.append((start + len(piece) - len(piece.lstrip()), match.start()))
        start = match.end()
    tail = code[start:]
    if tail.strip():
        found.append((start + len(tail) - len(tail.lstrip()), len(code)))
    return found


def forbidden_statement(text: str) -> tuple[int, str] | None:
    """The first statement that would escape the push's transaction (COMMIT,
    BEGIN, ...) or its role (SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION),
    as (line, statement keywords), or None. Comments, strings, quoted
    identifiers and dollar-quoted bodies are skipped, and so is a
    `BEGIN ATOMIC ... END` function body."""
    code = _blank_out(text)
    for start, end in _statements_in(code):
        words = [word.upper() for word in _WORD.findall(code[start:end])[:4]]
        found = _forbidden(words)
        if found:
            return text.count("\n", 0, start) + 1, found
    return None


def _forbidden(words: Sequence[str]) -> str | None:
    if not words:
        return None
    if words[0] in _TRANSACTION_CONTROL:
        return words[0]
    if words[0] in ("SET", "RESET"):
        rest = list(words[1:])
        if rest[:1] in (["SESSION"], ["LOCAL"]):
            rest = rest[1:]
        if rest[:1] in (["ROLE"], ["AUTHORIZATION"]) or (
            words[0] == "RESET" and rest[:1] == ["ALL"]
        ):
            return " ".join(words[: len(words) - len(rest) + 1])
    return None


def _blank_out(text: str) -> str:
    """`text` with comments, literals and dollar-quoted bodies replaced by
    spaces (newlines kept), so offsets and line numbers still match."""
    out: list[str] = []
    position = 0
    while True:
        match = _SQL_SKIP.search(text, position)
        if match is None:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position : match.start()])
        end = match.end()
        if match.group("dollar"):
            closing = text.find(match.group("dollar"), end)
            end = len(text) if closing < 0 else closing + len(match.group("dollar"))
        out.append(re.sub(r"[^\n]", " ", text[match.start() : end]))
        position = end


# ---------------------------------------------------------------- the database


class _Session:
    """The push's connection, counting the statements it sends."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.statements = 0

    def execute(self, query: Any, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        self.statements += 1
        return self.connection.execute(query, params)


def push(
    connection: psycopg.Connection[Any],
    migrations: Sequence[Migration],
    catalog: Catalog,
    *,
    dry_run: bool = False,
    on_applied: Callable[[Applied], None] | None = None,
    on_wait: Callable[[], None] | None = None,
    stack: str | None = None,
) -> PushResult:
    """Apply what the ledger lacks, under the push lock; `connection` must be
    in autocommit mode (each file gets its own transaction). A dry run takes
    no lock and changes nothing. `stack` names the stack in the way back a
    refusal gives."""
    session = _Session(connection)
    if not dry_run:
        _lock(session, on_wait)
    ledger = _read_ledger(session, stack)
    todo = pending(migrations, ledger or (), catalog)
    if dry_run or not todo:
        return PushResult((), todo, session.statements, dry_run)
    if ledger is None:
        _create_ledger(session)
    applied: list[Applied] = []
    for migration in todo:
        done = _apply(session, migration)
        applied.append(done)
        if on_applied is not None:
            on_applied(done)
    return PushResult(tuple(applied), todo, session.statements)


def hold_lock(
    connection: psycopg.Connection[Any], on_wait: Callable[[], None] | None = None
) -> None:
    """Take the push lock for the rest of the session (Prisma mode holds it on
    a connection of its own while Prisma runs)."""
    _lock(_Session(connection), on_wait)


def _lock(session: _Session, on_wait: Callable[[], None] | None) -> None:
    """Take the push lock; tell the caller when it has to wait for another push."""
    row = session.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
    if row and row[0]:
        return
    if on_wait is not None:
        on_wait()
    session.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))


def _read_ledger(session: _Session, stack: str | None = None) -> list[LedgerEntry] | None:
    """The ledger in one query, or None when no push has created it yet."""
    import psycopg
    from psycopg import sql

    query = sql.SQL("SELECT schema, version, name, checksum FROM {}.{}").format(
        sql.Identifier(names.META_SCHEMA), sql.Identifier(LEDGER_TABLE)
    )
    try:
        rows = session.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.errors.InsufficientPrivilege:
        owner = _ledger_owner(session)
        if owner is not None and owner != names.OWNER:
            raise PushError(
                f"cannot read {LEDGER}: it is owned by {owner}, not {names.OWNER} (`pulumi "
                "destroy` hands the objects it keeps to the server's admin); as the admin, run "
                f"the fixes `bin/naapdb verify --stack {stack or 'STACK'}` lists, the "
                "object-owner ones first"
            ) from None
        raise PushError(
            f"cannot read {LEDGER}: DATABASE_URL's role is not the migrator; "
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
            (f"{names.META_SCHEMA}.{LEDGER_TABLE}",),
        ).fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def _set_owner(session: _Session, schema: str) -> None:
    from psycopg import sql

    session.execute(
        sql.SQL("SET LOCAL ROLE {}; SET LOCAL search_path TO {}").format(
            sql.Identifier(names.OWNER), sql.Identifier(schema)
        )
    )


def _create_ledger(session: _Session) -> None:
    import psycopg
    from psycopg import sql

    try:
        with session.connection.transaction():
            _set_owner(session, names.META_SCHEMA)
            session.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.{} ("
                    " schema text NOT NULL,"
                    " version integer NOT NULL CHECK (version > 0),"
                    " name text NOT NULL,"
                    " checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now(),"
                    " duration_ms integer NOT NULL,"
                    " PRIMARY KEY (schema, version))"
                ).format(sql.Identifier(names.META_SCHEMA), sql.Identifier(LEDGER_TABLE))
            )
    except psycopg.errors.InvalidSchemaName:
        raise PushError(
            f"schema {names.META_SCHEMA} does not exist: run `pulumi up` first, "
            "the access layer creates it"
        ) from None
    except psycopg.errors.InsufficientPrivilege as error:
        raise PushError(_privilege_message(error)) from None


def _privilege_message(error: psycopg.Error) -> str:
    return (
        f"{one_line(error)}; the push must run as {names.MIGRATOR} "
        f"(a member of {names.OWNER}), check DATABASE_URL's user"
    )


def _apply(session: _Session, migration: Migration) -> Applied:
    """One file in its own transaction, recorded in the ledger in the same one."""
    import psycopg
    from psycopg import pq, sql

    connection = session.connection
    failure: psycopg.Error | None = None
    try:
        with connection.transaction():
            _set_owner(session, migration.schema)
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
            # Recorded only while the file left the role as it found it: a file
            # that ran RESET ROLE would leave objects owned by the login.
            recorded = session.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (schema, version, name, checksum, duration_ms) "
                    "SELECT %s, %s, %s, %s, %s WHERE current_user = %s RETURNING 1"
                ).format(sql.Identifier(names.META_SCHEMA), sql.Identifier(LEDGER_TABLE)),
                (
                    migration.schema,
                    migration.version,
                    migration.file_name,
                    migration.checksum,
                    duration_ms,
                    names.OWNER,
                ),
            ).fetchone()
            if recorded is None:
                raise PushError(
                    f"{migration.label}: changes the role (SET ROLE/RESET ROLE); remove it, "
                    f"every file runs as {names.OWNER}"
                )
    except psycopg.Error as error:
        if failure is not None:
            raise PushError(_failure(migration, failure, _locate(session, migration))) from None
        if isinstance(error, psycopg.errors.InsufficientPrivilege):
            raise PushError(_privilege_message(error)) from None
        raise PushError(f"{migration.label}: {one_line(error)}") from None
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
            _set_owner(session, migration.schema)
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


# ---------------------------------------------------------------- the connection


MIGRATOR_URL = "export the migrator's connection string (never pass it on the command line)"


def resolve_database_url(
    environ: Mapping[str, str] | None = None, missing: str = MIGRATOR_URL
) -> str:
    """The migrator's connection string: from the Secrets Manager secret named
    by `NAAPDB_DATABASE_SECRET_ID` (its AWSCURRENT version, RDS secret format),
    which stays right after an alternating rotation, else `DATABASE_URL`.
    `missing` ends the message when neither is set: which login will do."""
    environ = os.environ if environ is None else environ
    secret_id = environ.get(SECRET_ID_VARIABLE, "").strip()
    if secret_id:
        return url_from_secret(_fetch_secret(secret_id))
    value = environ.get(DATABASE_URL, "").strip()
    if not value:
        raise ConnectionError_(f"neither {DATABASE_URL} nor {SECRET_ID_VARIABLE} is set; {missing}")
    return value


def _fetch_secret(secret_id: str) -> str:
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("secretsmanager")
        response = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise ConnectionError_(
            f"cannot read the secret {SECRET_ID_VARIABLE} names: {one_line(error)}"
        ) from None
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names has no SecretString")
    return text


def url_from_secret(secret_text: str) -> str:
    """A `postgresql://` URL from an RDS-format secret (host, port, dbname,
    username, password), always with TLS: the secret's `sslmode` when it is
    a TLS mode (`verify-full` for naap-db's secrets, with the RDS CA bundle
    `naapdb.trust.root_certificate` names), else `require`."""
    try:
        secret = json.loads(secret_text)
    except json.JSONDecodeError:
        raise ConnectionError_(
            f"the secret {SECRET_ID_VARIABLE} names is not JSON in the RDS secret format"
        ) from None
    if not isinstance(secret, Mapping):
        raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names is not a JSON object")
    for key in ("host", "username", "password"):
        if not secret.get(key):
            raise ConnectionError_(f"the secret {SECRET_ID_VARIABLE} names has no `{key}`")
    user = quote(str(secret["username"]), safe="")
    password = quote(str(secret["password"]), safe="")
    host = str(secret["host"])
    port = int(secret.get("port") or 5432)
    dbname = quote(str(secret.get("dbname") or names.DATABASE), safe="")
    sslmode = str(secret.get("sslmode") or "require")
    sslmode = sslmode if sslmode in trust.TLS_MODES else "require"
    query = f"sslmode={sslmode}"
    root = trust.root_certificate() if sslmode in trust.VERIFYING_MODES else None
    if root:
        query += f"&sslrootcert={quote(root, safe='/')}"
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?{query}"

"""The push's files: `migrations/<schema>/NNNN_description.sql`, found and
checked before anything connects (names, order, encoding, what a file may
not contain), and compared with the ledger to find what is still to apply."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from naapdb import names
from naapdb.catalog import CATALOG_KEY, Catalog, parse_catalog
from naapdb.errors import ConfigError
from naapdb.project import PROJECT_FILE, find_project_root, project_value, read_yaml
from naapdb.push.sqltext import forbidden_statement

MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<description>[a-z0-9][a-z0-9_]*)\.sql$")
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
        _refuse_link_or_outside(entry, source)
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
        _refuse_link_or_outside(path, directory.parent)
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


def _refuse_link_or_outside(path: Path, source: Path) -> None:
    """A migration (or its schema directory) is a real file of the source
    tree: a symbolic link could make the push run something the pull request
    never showed (another file of the runner, a secret), so it is refused."""
    if path.is_symlink():
        raise PushError(
            f"{path}: is a symbolic link; a migration must be a regular file in its "
            "schema's directory, so the push runs what the repository shows"
        )
    if not path.resolve().is_relative_to(source.resolve()):
        raise PushError(f"{path}: lies outside {source}; move it into its schema's directory")


def _read(schema: str, version: int, path: Path) -> Migration:
    # O_NOFOLLOW: a file swapped for a link after the checks is not followed either.
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise PushError(f"{path}: cannot be read ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as handle:
        content = handle.read()
    try:
        sql_text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PushError(f"{path}: is not UTF-8 (byte {error.start})") from None
    forbidden = forbidden_statement(sql_text)
    if forbidden is not None:
        line, statement = forbidden
        raise PushError(
            f"{path}:{line}: {statement} is not allowed in a migration: each file already "
            f"runs in its own transaction as {names.schema_owner(schema)}; remove it"
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

"""`push [--source DIR] [--stack S] [--prisma DIR] [--dry-run]`: the schema push.

Connects as the migrator from `DATABASE_URL` (or, with alternating rotation, the
Secrets Manager secret named by `NAAPDB_DATABASE_SECRET_ID`), and runs each
schema's files as that schema's push login, whose password derives from
`NAAPDB_PUSH_KEY`; never from argv. Prints one line per applied migration
with its duration, `up to date` when nothing was new. Exit 0 on success, 2
on any stop (nothing half-applied)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from naapdb.commands import add_project_argument

if TYPE_CHECKING:
    from naapdb.catalog import Catalog
    from naapdb.push import Applied
    from naapdb.settings import ServerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="the migrations directory (default: the stack's naap-db:push.source, "
        "else migrations/)",
    )
    parser.add_argument(
        "--stack",
        default=None,
        help="read the catalogue and push settings from Pulumi.STACK.yaml (default: "
        "$NAAPDB_STACK, else the catalogue of Pulumi.yaml alone)",
    )
    parser.add_argument(
        "--prisma",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the platform's `npx prisma db push` in DIR instead of the SQL files",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would run; change nothing"
    )
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    from naapdb import push
    from naapdb.project import find_project_root

    root = args.project or find_project_root()
    stack = push.stack_name(args.stack)
    mode, source_dir, prisma_dir = "sql", push.DEFAULT_SOURCE, None
    epochs: dict[str, int] = {}
    server: ServerSettings | None = None
    if stack:
        from naapdb.stackfiles import load_stack_settings

        settings = load_stack_settings(stack, root)
        catalog, server = settings.catalog, settings.server
        mode, source_dir, prisma_dir = (
            settings.push.mode,
            settings.push.source,
            settings.push.prisma_dir,
        )
        epochs = dict(settings.credentials.epochs)
    else:
        # Pulumi.yaml alone: the settings layer is not imported, so a no-op push starts fast.
        catalog = push.project_catalog(root)
    if args.prisma is not None or (mode == "prisma" and prisma_dir):
        return _prisma(args.prisma or _under(root, str(prisma_dir)), catalog, args.dry_run)
    if mode == "off" and args.source is None:
        print(f"push is off for stack {stack} (naap-db:push.mode); nothing to do")
        return 0
    return _sql(
        args.source or _under(root, source_dir), catalog, server, args.dry_run, stack, epochs
    )


def _under(root: Path, configured: str) -> Path:
    """A configured directory, relative to the current directory when it can be,
    so messages name `migrations/public/...` rather than an absolute path."""
    path = Path(configured)
    if not path.is_absolute():
        path = root / path
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _sql(
    source: Path,
    catalog: Catalog,
    server: ServerSettings | None,
    dry_run: bool,
    stack: str | None,
    epochs: dict[str, int],
) -> int:
    """Apply the SQL files, each schema's as its own push login; to an rds
    server always over verify-full."""
    import psycopg

    from naapdb import push, pushkey
    from naapdb.connection import connect, one_line, redact
    from naapdb.server_tls import connection_string

    started = time.perf_counter()
    try:
        migrations = push.discover(source, catalog)
    except push.PushError as error:
        return _stop(str(error))
    url = connection_string(push.resolve_database_url(), server)

    def connect_schema(schema: str) -> psycopg.Connection[Any]:
        # The key is read only when a schema has files to apply: a no-op or
        # dry-run push needs none. The schema's login goes over the same
        # server and TLS as the orchestrating one.
        key = pushkey.push_key(stack=stack)
        connector = push.schema_connector(url, key, lambda login: epochs.get(login, 0))
        return connector(schema)

    try:
        with connect(url, autocommit=True) as connection:
            result = push.push(
                connection,
                migrations,
                catalog,
                connect_schema=connect_schema,
                dry_run=dry_run,
                stack=stack,
                on_applied=_print_applied,
                on_wait=lambda: print(
                    "another push holds the lock; waiting for it", file=sys.stderr, flush=True
                ),
            )
    except (push.PushError, pushkey.PushKeyError) as error:
        return _stop(redact(str(error), url))
    except psycopg.Error as error:
        return _stop(redact(one_line(error), url))
    if dry_run:
        for migration in result.pending:
            print(f"would apply {migration.label}")
        print(f"{len(result.pending)} to apply (dry run)" if result.pending else "up to date")
    elif result.applied:
        elapsed = round((time.perf_counter() - started) * 1000)
        count = len(result.applied)
        print(f"applied {count} migration{'s' if count != 1 else ''} in {elapsed} ms")
    else:
        print("up to date")
    return 0


def _print_applied(applied: Applied) -> None:
    print(f"applied {applied.migration.label} ({applied.duration_ms} ms)", flush=True)


def _stop(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _prisma(prisma_dir: Path, catalog: Catalog, dry_run: bool) -> int:
    """Check the datasource `schemas` against the catalogue, then run Prisma's
    own push under the push lock."""
    import os
    import subprocess

    import psycopg

    from naapdb import names, prisma, push
    from naapdb.adopt import adopt
    from naapdb.connection import connect, one_line, redact
    from naapdb.plan import build_plan

    try:
        schema_file = prisma.find_schema_file(prisma_dir)
        diff = prisma.compare(prisma.read_schemas(schema_file), catalog)
    except prisma.PrismaSchemaError as error:
        return _stop(str(error))
    if not diff.equal:
        for line in prisma.describe(diff, str(schema_file)):
            print(f"error: {line}", file=sys.stderr)
        return 2
    major = prisma.prisma_major_version(prisma_dir)
    if major is None:
        return _stop(
            f"{prisma_dir}: `npx --no-install prisma --version` does not run there; "
            "install the platform's dependencies (npm install) first"
        )
    command = prisma.push_command(major)
    if dry_run:
        print(f"would run `{' '.join(command)}` in {prisma_dir} as {names.OWNER}")
        return 0
    url = push.resolve_database_url()
    with connect(url, autocommit=True) as connection:
        push.hold_lock(connection)
        result = subprocess.run(
            command,
            cwd=prisma_dir,
            env=prisma.prisma_environment(os.environ, url),
            capture_output=True,
            text=True,
        )
        for stream, text in ((sys.stdout, result.stdout), (sys.stderr, result.stderr)):
            if text:
                stream.write(redact(text, url))
        if result.returncode != 0:
            return _stop(f"`{' '.join(command)}` failed in {prisma_dir} (exit {result.returncode})")
        # Prisma created every object as naap_owner: each goes to its
        # schema's owner, with the rights its default privileges give.
        try:
            adopted = adopt(connection, build_plan(catalog, prisma=True), acting_as=names.OWNER)
        except psycopg.Error as error:
            return _stop(
                f"handing Prisma's objects to their owners: {redact(one_line(error), url)}"
            )
    if adopted.changed:
        print(
            f"handed {len(adopted.owners)} objects to their schema's owner, "
            f"restored {len(adopted.grants)} rights"
        )
    return 0

"""`verify --stack S [--format text|json|sql] [--replica]`: compares the
live database (`DATABASE_URL`) with the stack's access plan, in one catalog
query (and one more for the push's ledger, where the login may read it).

stdout carries only the differences (text: one line each, grouped, with the
SQL that fixes it; json: the whole report; sql: the fixes as a psql script
for the admin, owners first), so it can be piped or diffed; a one-line
summary goes to stderr, naming the server it read: the primary, or a
replica with how far its replay has come. `--replica` reads through
`DATABASE_READ_URL` instead, and refuses a server that is not in recovery:
a replica's catalog is the primary's, replayed, so verifying it checks the
read path's rights without touching the primary. Exit 0 no drift, 1 drift,
2 error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from naapdb.commands import add_project_argument

if TYPE_CHECKING:
    from naapdb.settings import StackSettings

FORMATS = ("text", "json", "sql")
READ_URL_VARIABLE = "DATABASE_READ_URL"
READ_ONLY_URL = (
    "verify only reads the catalog, so the read-only login is enough: export its "
    "DATABASE_URL, e.g. from `pulumi stack output --stack {stack} --json --show-secrets "
    "| bin/naapdb dotenv --role naap_readonly` (never on the command line)"
)


PRISMA_BOUNDARY = (
    "note: push mode prisma: one `prisma db push` creates every schema's objects as "
    "naap_owner, a member of every schema's owner, so the schema boundary holds for the "
    "logins but not for the push: review schema.prisma as one file (docs/push.md)"
)


def migration_files(settings: StackSettings, project: Path | None) -> dict[str, set[str]] | None:
    """Schema -> its migration files' names, for the ledger check (sql mode;
    None when the stack pushes no files or the directory is missing)."""
    from naapdb.project import find_project_root

    if settings.push.mode != "sql":
        return None
    source = Path(settings.push.source)
    if not source.is_absolute():
        source = (project or find_project_root()) / source
    if not source.is_dir():
        return None
    return {
        directory.name: {path.name for path in directory.iterdir() if path.suffix == ".sql"}
        for directory in source.iterdir()
        if directory.is_dir()
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--replica",
        action="store_true",
        help="read a read replica through DATABASE_READ_URL (refused unless it is in recovery)",
    )
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    import psycopg

    from naapdb import verify
    from naapdb.connection import ConnectionError_, connect, one_line, redact, server_read
    from naapdb.drift_summary import lacks_created_objects, summary_lines
    from naapdb.push import resolve_database_url
    from naapdb.server_tls import connection_string
    from naapdb.stackfiles import load_stack_settings

    settings = load_stack_settings(args.stack, args.project)
    files = migration_files(settings, args.project)
    # In prod the logins rotate: NAAPDB_DATABASE_SECRET_ID (e.g. naap_readonly's
    # secret) follows AWSCURRENT where a fixed DATABASE_URL would go stale.
    url = (
        _read_url(args.stack)
        if args.replica
        else resolve_database_url(missing=READ_ONLY_URL.format(stack=args.stack))
    )
    # RDS: verify-full against the RDS CA bundle, whatever the string says.
    url = connection_string(url, settings.server)
    started = time.perf_counter()
    with connect(url, autocommit=True) as connection:
        try:
            server = server_read(connection)
            if args.replica and not server.in_recovery:
                raise ConnectionError_(
                    f"--replica: {READ_URL_VARIABLE} reached the {server.describe()}, which is "
                    "not in recovery; point it at a read replica (stack output read_urls)"
                )
            report = verify.verify(connection, settings.plan, settings.budget, files)
        except psycopg.Error as error:
            message = redact(one_line(error), url)
            raise ConnectionError_(f"cannot read the catalog: {message}") from None
        except verify.WrongDatabase as error:
            raise ConnectionError_(str(error)) from None
    elapsed = time.perf_counter() - started
    if settings.push.mode == "prisma":
        print(PRISMA_BOUNDARY, file=sys.stderr)
    if args.format == "json":
        document = {**verify.report_to_dict(report, args.stack), "server": server.as_dict()}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif args.format == "sql":
        sys.stdout.write(verify.report_to_sql(report, args.stack))
    else:
        sys.stdout.write("".join(line + "\n" for line in summary_lines(report, args.stack)))
        sys.stdout.write(verify.report_to_text(report))
    sys.stdout.flush()
    queries = f"{report.queries} {'query' if report.queries == 1 else 'queries'}"
    if report.drift:
        count = len(report.differences)
        missing = (
            f"; `pulumi up --stack {args.stack}` creates what is missing (summary above)"
            if lacks_created_objects(report)
            else ""
        )
        print(
            f"verify: {count} difference{'s' if count != 1 else ''} from the plan of stack "
            f"{args.stack} ({report.schemas} schemas, {queries}, {elapsed:.2f} s){missing}; "
            f"read the {server.describe()}",
            file=sys.stderr,
        )
        return 1
    print(
        f"verify: no drift: database {report.database} matches the plan of stack {args.stack} "
        f"({report.schemas} schemas, {queries}, {elapsed:.2f} s); read the {server.describe()}",
        file=sys.stderr,
    )
    return 0


def _read_url(stack: str) -> str:
    """`--replica`: the replica's connection string, from the environment only."""
    from naapdb.connection import ConnectionError_

    value = os.environ.get(READ_URL_VARIABLE, "").strip()
    if not value:
        raise ConnectionError_(
            f"--replica reads {READ_URL_VARIABLE}, which is not set; export it from `pulumi "
            f"stack output --stack {stack} --json --show-secrets | bin/naapdb dotenv --role "
            "naap_readonly` (never on the command line)"
        )
    return value

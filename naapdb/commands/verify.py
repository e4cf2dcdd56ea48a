"""`verify --stack S [--format text|json]`: compares the live database
(`DATABASE_URL`) with the stack's access plan, in one catalog query.

stdout carries only the differences (text: one line each, grouped, with the
SQL that fixes it; json: the whole report), so it can be piped or diffed;
a one-line summary goes to stderr. Exit 0 no drift, 1 drift, 2 error."""

from __future__ import annotations

import argparse
import sys
import time

from naapdb.commands import add_project_argument

FORMATS = ("text", "json")
READ_ONLY_URL = (
    "verify only reads the catalog, so the read-only login is enough: export its "
    "DATABASE_URL, e.g. from `pulumi stack output --stack {stack} --json --show-secrets "
    "| bin/naapdb dotenv --role naap_readonly` (never on the command line)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    import psycopg

    from naapdb import verify
    from naapdb.connection import ConnectionError_, connect, one_line, redact
    from naapdb.drift_summary import lacks_created_objects, summary_lines
    from naapdb.push import resolve_database_url
    from naapdb.server_tls import connection_string
    from naapdb.stackfiles import load_stack_settings

    settings = load_stack_settings(args.stack, args.project)
    # In prod the logins rotate: NAAPDB_DATABASE_SECRET_ID (e.g. naap_readonly's
    # secret) follows AWSCURRENT where a fixed DATABASE_URL would go stale.
    url = resolve_database_url(missing=READ_ONLY_URL.format(stack=args.stack))
    # RDS: verify-full against the RDS CA bundle, whatever the string says.
    url = connection_string(url, settings.server)
    started = time.perf_counter()
    with connect(url, autocommit=True) as connection:
        try:
            report = verify.verify(connection, settings.plan, settings.budget)
        except psycopg.Error as error:
            message = redact(one_line(error), url)
            raise ConnectionError_(f"cannot read the catalog: {message}") from None
        except verify.WrongDatabase as error:
            raise ConnectionError_(str(error)) from None
    elapsed = time.perf_counter() - started
    if args.format == "json":
        sys.stdout.write(verify.report_to_json(report, args.stack))
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
            f"{args.stack} ({report.schemas} schemas, {queries}, {elapsed:.2f} s){missing}",
            file=sys.stderr,
        )
        return 1
    print(
        f"verify: no drift: database {report.database} matches the plan of stack {args.stack} "
        f"({report.schemas} schemas, {queries}, {elapsed:.2f} s)",
        file=sys.stderr,
    )
    return 0

"""`adopt --stack S`: hand every object of each catalogue schema to its
schema's owner and restore the rights the plan's default privileges give
it (`naapdb.adopt`), as `DATABASE_URL`'s login: the server's admin.

`pulumi up` runs it after the access layer, so a database deployed before
schemas had owners of their own, or brought back after `pulumi destroy`,
needs no hand work. Prints what it changed; exit 0, 2 on error (nothing
half-done: one transaction)."""

from __future__ import annotations

import argparse

from naapdb.commands import add_project_argument

ADMIN_URL = (
    "export the server admin's connection string as DATABASE_URL (never on the command line)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    import psycopg

    from naapdb.adopt import adopt
    from naapdb.connection import ConnectionError_, connect, one_line, redact
    from naapdb.push import resolve_database_url
    from naapdb.stackfiles import load_stack_settings

    settings = load_stack_settings(args.stack, args.project)
    url = resolve_database_url(missing=ADMIN_URL)
    with connect(url, autocommit=True) as connection:
        try:
            adopted = adopt(connection, settings.plan)
        except psycopg.Error as error:
            raise ConnectionError_(
                f"adopt stopped, nothing changed: {redact(one_line(error), url)}; "
                "DATABASE_URL must be the server's admin"
            ) from None
    for difference in (*adopted.owners, *adopted.grants):
        print(f"{difference.schema}: {difference.fix}")
    if adopted.changed:
        print(
            f"adopted: {len(adopted.owners)} objects handed to their schema's owner, "
            f"{len(adopted.grants)} rights restored"
        )
    else:
        print("nothing to adopt: every object has its schema's owner and its rights")
    return 0

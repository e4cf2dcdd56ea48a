"""`prisma-check PATH [--stack S]`: the datasource `schemas` list of a
`schema.prisma` against the catalogue. Exit 0 when they match, 1 naming each
schema missing from either side, 2 when the file has no parsable list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from naapdb.commands import add_project_argument

DIRECTORY_FIX = (
    "name the schema.prisma file itself, or the directory Prisma runs in (the NAAP "
    "repository's packages/database)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        type=Path,
        help="the platform's schema.prisma (in the NAAP repository: "
        "packages/database/prisma/schema.prisma), or the directory Prisma runs in",
    )
    parser.add_argument(
        "--stack",
        default=None,
        help="read the catalogue from Pulumi.STACK.yaml (default: $NAAPDB_STACK, else "
        "the catalogue of Pulumi.yaml, which every stack inherits)",
    )
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    from naapdb import prisma
    from naapdb.push import resolve_catalog

    catalog = resolve_catalog(args.stack, args.project)
    try:
        path = (
            prisma.find_schema_file(args.path, DIRECTORY_FIX) if args.path.is_dir() else args.path
        )
        schemas = prisma.read_schemas(path)
    except prisma.PrismaSchemaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    diff = prisma.compare(schemas, catalog)
    if diff.equal:
        print(f"{path}: the datasource schemas match the catalogue ({len(schemas)} schemas)")
        return 0
    for line in prisma.describe(diff, str(path)):
        print(line)
    return 1

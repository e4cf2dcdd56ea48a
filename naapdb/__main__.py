"""`python -m naapdb COMMAND`: parses the command line and dispatches to one
module per command under `naapdb.commands`, imported only when used so every
command starts fast. Exit codes: 0 ok, 1 the check failed, 2 bad input or error."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from naapdb.connection import ConnectionError_
from naapdb.errors import ConfigError

# command name -> (module under naapdb.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("plan", "print the access plan of a stack (no engine, no database)"),
    "diff": ("diff", "who gains or loses access between a git revision and the working tree"),
    "verify": ("verify", "compare the live database (DATABASE_URL) with the plan"),
    "push": ("push", "apply the schema migrations as DATABASE_URL's role"),
    "prisma-check": ("prisma_check", "compare a schema.prisma `schemas` list with the catalogue"),
    "rotate": ("rotate", "rotate one alternating-login secret in Secrets Manager"),
    "dotenv": ("dotenv", "print .env lines from `pulumi stack output --json --show-secrets`"),
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m naapdb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(f"naapdb.commands.{module_name}") is None:
            continue  # a command whose module is not part of this checkout
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _command_module(module_name).add_arguments(sub)
    return parser


def _command_module(module_name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"naapdb.commands.{module_name}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = _command_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except (ConfigError, ConnectionError_) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`python -m naapdb COMMAND`: parses the command line and dispatches to one
module per command under `naapdb.commands`, imported only when used so every
command starts fast. Exit codes: 0 ok, 1 the check failed, 2 bad input or error."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
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
    "adopt": ("adopt", "hand every schema's objects to its owner (as the server's admin)"),
    "prisma-check": ("prisma_check", "compare a schema.prisma `schemas` list with the catalogue"),
    "rotate": ("rotate", "rotate one alternating-login secret in Secrets Manager"),
    "dotenv": ("dotenv", "print .env lines from `pulumi stack output --json --show-secrets`"),
    "recover": ("recover", "after a `pulumi up` that did not finish: adopt what it left, unlock"),
}


DESCRIPTION = """\
naap-db's ops tools for the NAAP platform's PostgreSQL (one database `naap`,
one schema per plugin): print a stack's access plan, check the live database
against it, push the schema migrations, check a Prisma schema against the
plugin catalogue, rotate a prod login, write a .env, and recover a stack
after a `pulumi up` that did not finish. Plain Python: no Pulumi engine
(`recover` runs the pulumi CLI). Connection strings come from the
environment (DATABASE_URL), never from argv. Exit codes: 0 ok, 1 the
check failed, 2 bad input or error."""

EPILOG = """\
Run it from the checkout as bin/naapdb (any directory works: it uses the
checkout's venv), or as venv/bin/python -m naapdb from the checkout root.
`bin/naapdb COMMAND --help` lists a command's options; docs/reference.md's
command table explains them."""

# How the usage line names the program: the launcher passes what was typed.
PROG_VARIABLE = "NAAPDB_PROG"


class _DefaultsShown(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one worth
    showing (not None, not a flag's False) and the help does not say it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        if action.option_strings and action.nargs != 0:
            return f"{text} (default: %(default)s)".lstrip()
        return text


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=os.environ.get(PROG_VARIABLE) or "python -m naapdb",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=_Parser
    )
    for name, (module_name, help_text) in COMMANDS.items():
        if importlib.util.find_spec(f"naapdb.commands.{module_name}") is None:
            continue  # a command whose module is not part of this checkout
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=_DefaultsShown,
        )
        _command_module(module_name).add_arguments(sub)
    return parser


def _command_module(module_name: str):  # type: ignore[no-untyped-def]
    return importlib.import_module(f"naapdb.commands.{module_name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `python -m naapdb`: what it can do, as bad usage
        parser.print_help(sys.stderr)
        return 2
    module = _command_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args))
    except (ConfigError, ConnectionError_) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

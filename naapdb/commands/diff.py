"""`diff --stack S --base REF [--head REF] [--format text|markdown|json] [--fail-on-widening]`:
who gains or loses access between the stack's plan at git revision REF
(that commit's Pulumi.yaml and Pulumi.S.yaml, read without a checkout) and
the working tree's, or `--head`'s (then both sides come from git alone, so
a checkout of untrusted code is read as data: no symbolic link in it is
followed). Exit 0; 1 with `--fail-on-widening` when a login gains rights
beyond its own plugin's schema; 2 on a bad REF, a stack missing at REF or an
invalid catalogue on either side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from naapdb.commands import add_project_argument

FORMATS = ("text", "markdown", "json")
HEAD = "the working tree"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument(
        "--base", required=True, metavar="REF", help="git revision to compare with, e.g. main"
    )
    parser.add_argument(
        "--head",
        metavar="REF",
        default=None,
        help="git revision to compare to, instead of the working tree",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    parser.add_argument(
        "--fail-on-widening",
        action="store_true",
        help="exit 1 when a login gains rights on a schema not its own plugin's",
    )
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    return diff(args.stack, args.base, args.format, args.fail_on_widening, args.project, args.head)


def diff(
    stack: str,
    base: str,
    output_format: str,
    fail_on_widening: bool,
    project: Path | None,
    head: str | None = None,
) -> int:
    """Print the diff; the exit code as the module docstring says."""
    from naapdb import accessdiff
    from naapdb.errors import ConfigError
    from naapdb.gitrev import settings_at
    from naapdb.project import find_project_root
    from naapdb.stackfiles import load_stack_settings

    root = find_project_root(project)
    if head is not None:
        after = settings_at(head, stack, root, option="--head")
    else:
        try:
            after = load_stack_settings(stack, root)
        except ConfigError as error:
            raise ConfigError(f"in {HEAD}", str(error)) from None
    before = settings_at(base, stack, root)
    result = accessdiff.diff_plans(stack, base, head or HEAD, before.plan, after.plan)
    render = {
        "text": accessdiff.diff_to_text,
        "markdown": accessdiff.diff_to_markdown,
        "json": accessdiff.diff_to_json,
    }[output_format]
    sys.stdout.write(render(result))
    return 1 if fail_on_widening and result.flagged else 0

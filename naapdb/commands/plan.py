"""`plan --stack S [--format text|json|sql|matrix|markdown]`: the access plan
of a stack, read from Pulumi.yaml and Pulumi.S.yaml; no engine, no database.
`matrix` and `markdown` are who-may-do-what at a glance (naapdb.matrix)."""

from __future__ import annotations

import argparse
import sys

from naapdb.commands import add_project_argument

FORMATS = ("text", "json", "sql", "matrix", "markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev or prod")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format")
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    from naapdb.stackfiles import load_stack_settings

    settings = load_stack_settings(args.stack, args.project)
    text = render(settings.plan, args.format, settings.budget)
    if args.format in ("text", "json"):
        text = _with_scaling(text, settings, args.format)
    sys.stdout.write(text)
    return 0


def _with_scaling(text: str, settings, output_format: str) -> str:  # type: ignore[no-untyped-def]
    """The pooler's pools and the read replicas, where the stack has them."""
    import json

    from naapdb.render_scaling import scaling_dict, scaling_lines

    if output_format == "json":
        extra = scaling_dict(settings)
        return json.dumps({**json.loads(text), **extra}, indent=2) + "\n" if extra else text
    lines = scaling_lines(settings)
    return text + "".join(line + "\n" for line in lines)


def render(plan, output_format: str, budget=None) -> str:  # type: ignore[no-untyped-def]
    from naapdb import render as renderers

    if output_format == "json":
        return renderers.plan_to_json(plan, budget)
    if output_format == "sql":
        from naapdb.sql import plan_to_sql

        return plan_to_sql(plan)
    if output_format in ("matrix", "markdown"):
        from naapdb.matrix import matrix_markdown, matrix_text

        return matrix_text(plan) if output_format == "matrix" else matrix_markdown(plan)
    return renderers.plan_to_text(plan, budget)

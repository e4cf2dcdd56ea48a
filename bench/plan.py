"""Section `plan`: the access plan built and rendered, in process and as the CLI."""

from __future__ import annotations

from pathlib import Path

from bench.common import (
    ROOMY_LIMITS,
    ROOT,
    module_missing,
    project_dir,
    synthetic_catalogue,
    timed,
    timed_cli,
)
from bench.report import Report

PLAN_STACK = "prod"  # alternating rotation: the larger plan (two logins per identity)


def bench_plan(report: Report) -> None:
    """The plan of the prod stack (the larger one: two logins per identity)
    built, rendered as text and as SQL in process, and `plan --format sql` as
    a user runs it (a fresh `python -m naapdb`, wall time)."""
    from naapdb.render import plan_to_text
    from naapdb.settings import parse_settings
    from naapdb.stackfiles import read_raw_config

    sql_missing = module_missing("naapdb.sql")
    if sql_missing:
        report.problems.append(("plan", f"plan sql not measured: {sql_missing}"))
    raw = read_raw_config(ROOT, PLAN_STACK)
    for size in report.sizes:
        stack_raw = dict(raw, plugins=synthetic_catalogue(size), limits=ROOMY_LIMITS)
        build, text, sql, cli = [], [], [], []
        for _ in range(report.repeat):
            seconds, plan = timed(lambda: parse_settings(PLAN_STACK, stack_raw).plan)  # noqa: B023
            build.append(seconds)
            text.append(timed(lambda: plan_to_text(plan))[0])  # noqa: B023
            if not sql_missing:
                from naapdb.sql import plan_to_sql

                sql.append(timed(lambda: plan_to_sql(plan))[0])  # noqa: B023
        with project_dir(size) as project:
            for _ in range(report.repeat):
                cli.append(_plan_cli(project, "text" if sql_missing else "sql"))
        report.add("plan", "settings and plan", "s", size, build)
        report.add("plan", "text", "s", size, text)
        if sql:
            report.add("plan", "sql", "s", size, sql)
        report.add(
            "plan", f"`plan --format {'text' if sql_missing else 'sql'}` (CLI)", "s", size, cli
        )


def _plan_cli(project: Path, output_format: str) -> float:
    return timed_cli(
        ["plan", "--stack", PLAN_STACK, "--format", output_format, "--project", str(project)]
    )

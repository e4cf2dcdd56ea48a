"""Section `verify`: `verify` against a database built from a plan of N schemas."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    ROOMY_LIMITS,
    ROOT,
    give_connections,
    module_missing,
    project_dir,
    synthetic_catalogue,
    timed,
    timed_cli,
)
from bench.report import Report

VERIFY_SIZES = (8, 200, 1000)


VERIFY_STACK = "dev"


def verify_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Verify runs at 8, 200 and 1,000 schemas (those of `--sizes`), else at
    every size asked for."""
    return tuple(size for size in sizes if size in VERIFY_SIZES) or tuple(sizes)


def _verify_cli(url: str, project: Path) -> float:
    return timed_cli(
        ["verify", "--stack", VERIFY_STACK, "--project", str(project)], DATABASE_URL=url
    )


def bench_verify(report: Report) -> None:
    """`verify` of a database built from the plan of N schemas (a fresh
    server each, applied by the superuser), against that plan: the time of
    `naapdb.verify.verify` on an open connection and of the command as a
    user runs it, and the queries it sent (its own count)."""
    missing = module_missing("naapdb.verify") or module_missing("naapdb.sql")
    if missing:
        report.problems.append(("verify", f"not measured: {missing}"))
        return
    import psycopg

    from naapdb import verify
    from naapdb.settings import parse_settings
    from naapdb.sql import plan_to_sql
    from naapdb.stackfiles import read_raw_config
    from tests.pgserver import cluster_factory

    raw = read_raw_config(ROOT, VERIFY_STACK)
    with cluster_factory() as factory:
        for size in verify_sizes(report.sizes):
            synthetic = dict(raw, plugins=synthetic_catalogue(size), limits=ROOMY_LIMITS)
            settings = parse_settings(VERIFY_STACK, synthetic)
            plan = settings.plan
            server = factory.start()
            # `verify` holds the server to the stack's connection budget.
            give_connections(server, settings.budget.total + settings.budget.ceiling.reserved)
            server.execute(plan_to_sql(plan))
            seconds, queries, differences, cli = [], [], [], []
            with psycopg.connect(server.conninfo(), autocommit=True) as connection:
                for _ in range(report.repeat):
                    elapsed, result = timed(lambda: verify.verify(connection, plan))  # noqa: B023
                    seconds.append(elapsed)
                    queries.append(result.queries)
                    differences.append(len(result.differences))
            with project_dir(size) as project:
                cli = [_verify_cli(server.url(), project) for _ in range(report.repeat)]
            server.stop()
            schemas = f"{len(plan.schemas)} schemas"
            report.add("verify", "verify", "s", size, seconds, note=schemas)
            report.add("verify", "`python -m naapdb verify` (CLI)", "s", size, cli, note=schemas)
            report.add("verify", "queries sent", "count", size, queries)
            if any(differences):
                report.problems.append(
                    (
                        "verify",
                        f"{max(differences)} differences at {size} plugins "
                        "on a database built from the plan",
                    )
                )

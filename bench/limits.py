"""Section `limits`: what one noisy plugin at its limits costs its neighbours."""

from __future__ import annotations

import sys

from bench.common import ROOT, module_missing
from bench.report import Report

NOISY_PLUGIN, NOISY_SCHEMA = "wallet", "plugin_wallet"


QUIET_PLUGIN, QUIET_SCHEMA = "community", "plugin_community"


# The noisy plugin's own limits (its catalogue entry): small, so a run is quick.
NOISY_LIMITS = {"connections": 3, "statementTimeout": "1s", "idleInTransactionTimeout": "1s"}


def bench_limits(report: Report) -> None:
    """One plugin floods its connections, runs a query past its statement
    timeout and idles in a transaction holding a row lock, while another
    plugin's clients and the push keep connecting (a real server):
    `tests/limits_load.py`, the load test of the noisy-neighbours issue."""
    missing = module_missing("naapdb.limits") or module_missing("tests.limits_load")
    if missing:
        report.problems.append(("limits", f"not measured: {missing}"))
        return
    from naapdb.settings import parse_settings
    from naapdb.sql import plan_to_sql
    from naapdb.stackfiles import read_raw_config
    from tests.limits_load import create_tables, prepare, run_neighbour_load
    from tests.pgserver import cluster_factory

    raw = read_raw_config(ROOT, "dev")
    raw["plugins"] = [
        {**entry, "limits": NOISY_LIMITS} if entry["plugin"] == NOISY_PLUGIN else entry
        for entry in raw["plugins"]
    ]
    settings = parse_settings("dev", raw)
    plan = settings.plan
    runs: dict[str, list[float]] = {}
    with cluster_factory() as factory:
        for _ in range(report.repeat):
            server = factory.start()
            passwords = prepare(server, plan, plan_to_sql(plan))
            create_tables(server, NOISY_SCHEMA, QUIET_SCHEMA)
            load = run_neighbour_load(
                server,
                plan,
                passwords,
                noisy=f"naap_{NOISY_PLUGIN}",
                noisy_schema=NOISY_SCHEMA,
                quiet=f"naap_{QUIET_PLUGIN}",
                quiet_schema=QUIET_SCHEMA,
                catalog=settings.catalog,
                migrations=ROOT / "migrations",
            )
            server.stop()
            for error in load.errors:
                print(f"limits: {error}", file=sys.stderr)
            for name, value in (
                ("noisy connections opened", load.opened),
                ("noisy connections refused", load.refused),
                ("quiet connections made", load.quiet_connections),
                ("failures elsewhere", load.quiet_failures + load.push_failures),
                ("pushes run", load.push_runs),
                ("time to cancel a statement", load.cancel_seconds),
                ("time to end an idle transaction", load.lock_waited_seconds),
            ):
                runs.setdefault(name, []).append(value)
    note = (
        f"limit {NOISY_LIMITS['connections']}, {NOISY_LIMITS['connections'] + 5} attempts; "
        f"timeouts {NOISY_LIMITS['statementTimeout']}"
    )
    for name, values in runs.items():
        unit = "s" if name.startswith("time") else "count"
        report.add("limits", name, unit, None, values, note=note)

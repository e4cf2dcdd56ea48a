"""The benchmark (`bench/run.py`) at its smallest size, so it keeps working
as the code changes. It asserts the report's structure, never a time: the
figures exist, are positive where they must be, and tell the truth about
what was counted (resources, statements, failed connections)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench

SIZE = 8


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One run of the whole benchmark at 8 plugins, once per run, in its own
    process (as a user runs it; the suite's connection guard stays out of it)."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--json",
            "--sizes",
            str(SIZE),
            "--repeat",
            "1",
            "--quick",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"bench/run.py exited {result.returncode}:\n{result.stderr[-3000:]}"
    )
    return dict(json.loads(result.stdout))


def _figure(
    report: dict[str, Any], section: str, name: str, size: int | None = SIZE
) -> dict[str, Any]:
    found = [
        f
        for f in report["figures"]
        if f["section"] == section and f["name"] == name and f["size"] == size
    ]
    assert len(found) == 1, f"no single figure {section} / {name} at {size}: {found}"
    return found[0]


def test_nothing_was_left_unmeasured(report: dict[str, Any]) -> None:
    assert report["problems"] == []


def test_every_figure_is_a_median_of_its_runs(report: dict[str, Any]) -> None:
    assert report["figures"]
    for figure in report["figures"]:
        assert figure["runs"] == len(figure["values"]) >= 1
        assert figure["min"] <= figure["median"] <= figure["max"]
        assert figure["unit"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_program_figures(report: dict[str, Any], stack: str) -> None:
    section = f"program {stack}"
    assert _figure(report, section, "evaluation")["median"] > 0
    assert _figure(report, section, "peak RSS growth")["median"] >= 0
    resources = _figure(report, section, "resources")["median"]
    # The server, one schema's worth per catalogue entry and the platform's own.
    assert resources > SIZE + 1


@pytest.mark.parametrize("name", ["settings and plan", "text", "sql", "`plan --format sql` (CLI)"])
def test_plan_figures(report: dict[str, Any], name: str) -> None:
    assert _figure(report, "plan", name)["median"] > 0


def test_push_figures(report: dict[str, Any]) -> None:
    full = _figure(report, "push", "full push statements sent", None)["median"]
    noop = _figure(report, "push", "no-op push statements sent", None)["median"]
    # A full push sends each migration and its ledger row; a no-op only looks.
    assert full > noop > 0
    for name in ("full push", "no-op push", "no-op `python -m naapdb push` (CLI)"):
        assert _figure(report, "push", name, None)["median"] > 0


def test_verify_figures(report: dict[str, Any]) -> None:
    assert _figure(report, "verify", "verify")["median"] > 0
    assert _figure(report, "verify", "queries sent")["median"] >= 1


def test_rotation_figures(report: dict[str, Any]) -> None:
    assert _figure(report, "rotation", "time per rotation", None)["median"] > 0
    assert _figure(report, "rotation", "connections made", None)["median"] > 0
    assert _figure(report, "rotation", "failed connections", None)["median"] >= 0


def test_targets_are_all_checked(report: dict[str, Any]) -> None:
    names = [target["name"] for target in report["targets"]]
    assert len(names) == len(set(names)) >= 10
    for target in report["targets"]:
        assert target["limit"] and target["measured"]


def test_machine_is_recorded(report: dict[str, Any]) -> None:
    machine = report["machine"]
    assert machine["cpu_count"] >= 1
    assert machine["python"].count(".") == 2
    assert machine["postgresql"][0].isdigit()


def test_limits_figures(report: dict[str, Any]) -> None:
    """Counts, never times: the noisy plugin opened its limit and no more,
    and nobody else failed."""
    opened = _figure(report, "limits", "noisy connections opened", None)
    refused = _figure(report, "limits", "noisy connections refused", None)
    assert (opened["median"], refused["median"]) == (3, 5)
    assert _figure(report, "limits", "failures elsewhere", None)["max"] == 0
    assert _figure(report, "limits", "quiet connections made", None)["median"] > 0
    assert _figure(report, "limits", "time to cancel a statement", None)["median"] > 0


def test_the_pooler_benchmark_at_its_smallest() -> None:
    """bench/pooler.py on 4 plugins x 8 clients: direct, each plugin holds
    its one connection and the rest are refused; through a pooler that
    accepts 24 clients, 24 are held and run a transaction on the plugins' 4
    server sessions. Counts only, never a time."""
    import os

    from tests.pgbouncer import REQUIRE_VARIABLE, missing_reason

    reason = missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_VARIABLE):
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "pooler.py"),
            "--plugins",
            "4",
            "--clients-per-plugin",
            "8",
            "--transactions",
            "50",
            "--max-client-connections",
            "24",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert (figures["direct_held"], figures["direct_refused"]) == (4, 28)
    # The pooler's maxClientConnections (24) is what stops the pooled path.
    assert (figures["pooled_held"], figures["pooled_refused"]) == (24, 8)
    assert figures["pooled_transactions"] == 24
    assert 0 < figures["server_sessions_while_pooled"] <= 4
    assert figures["direct_latency_us"] > 0 and figures["pooled_latency_us"] > 0

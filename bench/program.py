"""Section `program`: the whole Pulumi program of each stack under mocks, in a
fresh process per run (`bench/run.py --worker program`)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOMY_LIMITS, ROOT, STACKS, child_env, synthetic_catalogue, timed
from bench.report import Report

WORKER_MEMORY_LIMIT = 8 * 1024**3  # address space of one program evaluation


def program_worker(stack: str, size: int) -> dict[str, Any]:
    """One run of the whole program under mocks, in this (fresh) process.

    The Pulumi SDK and the components are imported before the clock starts:
    their import time does not depend on the catalogue, and is reported
    apart. Peak memory is the growth of the process's peak RSS
    (`getrusage().ru_maxrss`) over the run, so the imports are excluded too.
    """
    import_s, _ = timed(_import_program)
    from tests import harness

    with tempfile.TemporaryDirectory(prefix="naapdb-bench-") as directory:
        overrides = program_overrides(stack, size, Path(directory))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # This process ends with the run, as the real program does: the
        # collector the program turned off stays off (tests/harness.py).
        wall, run = timed(lambda: harness.run_program(stack, overrides, restore_collector=False))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return {
        "wall_s": wall,
        "import_s": import_s,
        "peak_rss_mib": peak_kib / 1024,
        "resources": len(run.resources),
        "types": dict(Counter(resource_.type for resource_ in run.resources)),
    }


def program_overrides(stack: str, size: int, scratch: Path) -> dict[str, Any]:
    """The stack's own config with the synthetic catalogue. A stack that
    deploys the rotation Lambda gets a stand-in zip (as the tests do): the
    real one is built by `scripts/build-rotation-lambda.py` and its size
    does not depend on the catalogue."""
    import zipfile

    import yaml

    overrides: dict[str, Any] = {
        "naap-db:plugins": synthetic_catalogue(size),
        "naap-db:limits": ROOMY_LIMITS,
    }
    config = (yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}).get("config") or {}
    credentials = config.get("naap-db:credentials") or {}
    if credentials.get("rotation") == "alternating":
        archive = scratch / "rotation-lambda.zip"
        with zipfile.ZipFile(archive, "w") as stand_in:
            stand_in.writestr("naapdb/__init__.py", "")
        overrides["naap-db:credentials"] = {**credentials, "lambdaArchive": str(archive)}
    return overrides


def _import_program() -> None:
    """The SDK, the providers, every component, and the provider submodules
    the components use (`pulumi_aws` loads `aws.ec2` and the like lazily,
    on first use: a constant cost that would otherwise land in the run)."""
    import importlib
    import re

    import components.database  # noqa: F401
    import tests.harness  # noqa: F401

    for source in (ROOT / "components").glob("*.py"):
        text = source.read_text()
        for package, alias in re.findall(r"^import (pulumi_\w+) as (\w+)$", text, re.MULTILINE):
            module = importlib.import_module(package)
            for path in set(re.findall(rf"\b{alias}((?:\.\w+)+)", text)):
                # A submodule is a lazy module until something inside it is
                # looked up: follow the whole path (`aws.ec2.SecurityGroup`).
                target: Any = module
                for attribute in path.lstrip(".").split("."):
                    target = getattr(target, attribute, None)


def _run_worker(stack: str, size: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--worker", "program"]
    command += ["--stack", stack, "--size", str(size)]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=ROOT,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"{stack} at {size} plugins did not finish in {timeout:.0f} s (--timeout)"
        ) from None
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{stack} at {size} plugins failed: {tail}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def bench_program(report: Report) -> None:
    """Each stack at each size, each run in a fresh process, so the peak
    memory is the run's own and no mocks state carries over. A size whose
    run would exceed `--timeout` even at linear growth from the size before
    is skipped, and so is every larger one."""
    for stack in STACKS:
        section = f"program {stack}"
        runs: dict[int, list[dict[str, Any]]] = {}
        try:
            for size in report.sizes:
                if runs:
                    last = max(runs)
                    slowest = max(r["wall_s"] for r in runs[last])
                    if slowest * size / last > report.timeout:
                        raise RuntimeError(
                            f"{stack} at {size} plugins not run: {last} plugins took "
                            f"{slowest:.0f} s, so even linear growth would exceed "
                            f"--timeout {report.timeout:.0f} s"
                        )
                runs[size] = [
                    _run_worker(stack, size, report.timeout) for _ in range(report.repeat)
                ]
        except RuntimeError as error:
            report.problems.append((section, str(error)))
        for size, results in runs.items():
            report.add(section, "evaluation", "s", size, [r["wall_s"] for r in results])
            report.add(
                section, "peak RSS growth", "MiB", size, [r["peak_rss_mib"] for r in results]
            )
            report.add(section, "resources", "count", size, [r["resources"] for r in results])
        if len(runs) >= 2:
            small, large = min(runs), max(runs)
            per_plugin = (runs[large][0]["resources"] - runs[small][0]["resources"]) / (
                large - small
            )
            report.add(
                section,
                "resources per plugin",
                "count",
                None,
                [per_plugin],
                note=f"(resources({large}) - resources({small})) / {large - small}",
            )
            report.per_plugin_types[stack] = _per_plugin_types(
                runs[small][0]["types"], runs[large][0]["types"], large - small
            )
        if runs:
            first = next(iter(runs.values()))
            report.add(
                section, "SDK and component imports", "s", None, [r["import_s"] for r in first]
            )


def _per_plugin_types(
    small: dict[str, int], large: dict[str, int], plugins: int
) -> dict[str, float]:
    growth = {
        kind: (large.get(kind, 0) - small.get(kind, 0)) / plugins
        for kind in set(small) | set(large)
    }
    return {kind: value for kind, value in sorted(growth.items()) if value}

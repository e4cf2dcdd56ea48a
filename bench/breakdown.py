"""Where `pulumi up` and the previews spend their time: the four operations of
bench/engine.py run once more, instrumented, on the Pulumi engine only.

    python bench/breakdown.py [--size 50] [--env NAME=VALUE ...] [--json FILE]

For each operation it records:

- wall time, and the Python program's own wall and CPU time (a
  `sitecustomize` on PYTHONPATH notes them as the program exits);
- the CLI's CPU profile (`pulumi --profiling`, read with `go tool pprof`):
  total CPU, and how much of it went into saving the snapshot
  (`SnapshotManager.saveSnapshot`: serializing the deployment, checking its
  integrity, marshalling and writing the file);
- snapshot writes, count and bytes (PULUMI_DIY_BACKEND_RETAIN_CHECKPOINTS keeps
  a copy of every checkpoint the file backend writes);
- engine steps by operation (the step executor's log);
- provider RPCs by method (`-v=7 --logtostderr`: the engine logs each call);
- the server's statements, transactions and connections (`log_statement`,
  `log_connections` and pg_stat_database on the stack's own PostgreSQL).

Instrumented runs are slower than bench/engine.py's (the checkpoint copies, the
log); the shares are what they are for. `--env` runs the operations with
engine settings (PULUMI_SKIP_CHECKPOINTS=true, say) to weigh a design.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder is first on sys.path (see bench/run.py).
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import exit_on_sigterm  # noqa: E402
from bench.engine import OPERATIONS, serve, set_catalogue  # noqa: E402
from tests.engine import (  # noqa: E402
    OPERATION_TIMEOUT,
    STACK,
    Project,
    make_project,
    missing_engine_reason,
)
from tests.pgserver import PgServer, cluster_factory  # noqa: E402

SITECUSTOMIZE = '''\
"""bench/breakdown.py: the Pulumi program's wall and CPU time, noted at exit."""
import atexit, json, os, resource, sys, time

_log = os.environ.get("NAAPDB_BENCH_PYTHON_LOG")
_profile = os.environ.get("NAAPDB_BENCH_PYTHON_PROFILE")
_start = time.monotonic()
if _log and sys.argv and sys.argv[0].endswith("pulumi-language-python-exec"):
    if _profile:
        import cProfile
        _profiler = cProfile.Profile()
        _profiler.enable()
    def _note() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with open(_log, "a") as log:
            log.write(json.dumps({"wall": time.monotonic() - _start,
                                  "cpu": usage.ru_utime + usage.ru_stime}) + "\\n")
        if _profile:
            _profiler.disable()
            _profiler.dump_stats(_profile)
    atexit.register(_note)
'''
# What `pulumi --profiling` attributes to saving the snapshot, and its parts.
PROFILE_FUNCTIONS = {
    "snapshot saves": r"backend\.\(\*SnapshotManager\)\.saveSnapshot$",
    "  serialize deployment": r"backend\.\(\*SnapshotManager\)\.Deployment$",
    "  verify integrity": r"snapshot\.VerifyIntegrity$",
    "  marshal and write": r"diy\.\(\*diyBackend\)\.saveStack$",
    "step executor": r"deploy\.\(\*stepExecutor\)\.worker$",
}
# `Provider[0x...].Create(urn...) executing`: the call, and the package of its resource.
PROVIDER_CALL = re.compile(r"Provider\[0x[0-9a-f]+\]\.(\w+)\((.*)\) executing")
PACKAGE = re.compile(r"(\w+):index/")
# The step executor's log line for each step it applies (diff steps included).
STEP = re.compile(r"StepExecutor worker\(-?\d+\): applying step (\S+) on ")
STATEMENT = re.compile(r"LOG:  (statement|execute [^:]*): ")


def _server_log_lines(server: PgServer) -> list[str]:
    path = server.data_dir / "server.log"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def _transactions(server: PgServer) -> int:
    with server.connect(dbname="postgres") as connection:
        row = connection.execute(
            "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _log_everything(server: PgServer) -> None:
    for statement in (
        "ALTER SYSTEM SET log_statement = 'all'",
        "ALTER SYSTEM SET log_connections = on",
        "SELECT pg_reload_conf()",
    ):
        server.execute(statement, dbname="postgres")


def _profile(path: Path) -> dict[str, float]:
    """Seconds of CPU, total and cumulative in each of PROFILE_FUNCTIONS."""
    output = subprocess.run(
        ["go", "tool", "pprof", "-top", "-cum", "-nodecount=100000", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = {}
    total = re.search(r"Total samples = ([\d.]+)(m?s)", output)
    if total:
        found["CLI CPU"] = float(total.group(1)) / (1000 if total.group(2) == "ms" else 1)
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        for name, pattern in PROFILE_FUNCTIONS.items():
            if name not in found and re.search(pattern, parts[5]):
                found[name] = _seconds(parts[3])
    return found


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(ms|s|us|µs)", text)
    if not match:
        return 0.0
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}[match.group(2)]
    return float(match.group(1)) * scale


def _python_hotspots(path: Path, count: int = 15) -> list[tuple[str, float, float]]:
    """The program's functions with the most own time: (function, own s, cumulative s)."""
    import pstats

    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, function), (_, _, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = "/".join(Path(file).parts[-2:])
        rows.append((f"{where}:{line}({function})", own, cumulative))
    return sorted(rows, key=lambda row: -row[1])[:count]


def instrumented(
    project: Project,
    server: PgServer,
    scratch: Path,
    name: str,
    arguments: Sequence[str],
    python_profile: bool = False,
) -> dict[str, Any]:
    """`pulumi ARGUMENTS` with every instrument on; what each reported."""
    state = Path(project.environment["PULUMI_BACKEND_URL"].removeprefix("file://"))
    prefix = scratch / name
    python_log = scratch / f"{name}.python.jsonl"
    stderr_path = scratch / f"{name}.stderr"
    environment = {
        **project.environment,
        "PULUMI_DIY_BACKEND_RETAIN_CHECKPOINTS": "true",
        "PYTHONPATH": str(scratch / "site"),
        "NAAPDB_BENCH_PYTHON_LOG": str(python_log),
    }
    pstats_path = scratch / f"{name}.pstats"
    if python_profile:
        environment["NAAPDB_BENCH_PYTHON_PROFILE"] = str(pstats_path)
    command = ["pulumi", *arguments, "--stack", STACK, "--non-interactive", "--color", "never"]
    command += ["--profiling", str(prefix), "-v=7", "--logtostderr"]
    log_before = len(_server_log_lines(server))
    transactions_before = _transactions(server)
    start = time.perf_counter()
    with open(stderr_path, "w") as stderr:
        result = subprocess.run(
            command,
            cwd=project.path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=OPERATION_TIMEOUT * 4,
            check=False,
        )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        tail = stderr_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"`pulumi {' '.join(arguments)}` exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{tail}"
        )
    figures: dict[str, Any] = {"operation": name, "wall": wall}
    figures["transactions"] = _transactions(server) - transactions_before - 1
    statements: Counter[str] = Counter()
    for line in _server_log_lines(server)[log_before:]:
        if "connection authorized" in line:
            statements["connections"] += 1
        elif STATEMENT.search(line):
            statements["statements"] += 1
    figures.update(statements)
    calls: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    with open(stderr_path, errors="replace") as log:
        for line in log:
            call = PROVIDER_CALL.search(line)
            if call:
                package = PACKAGE.search(call.group(2))
                calls[f"{package.group(1) if package else 'provider'}.{call.group(1)}"] += 1
            step = STEP.search(line)
            if step:
                steps[step.group(1)] += 1
    figures["provider calls"] = dict(calls)
    figures["steps"] = dict(steps)
    copies = [p for p in state.rglob(f"{STACK}.json.*") if p.suffix.lstrip(".").isdigit()]
    figures["snapshot writes"] = len(copies)
    figures["snapshot bytes"] = sum(p.stat().st_size for p in copies)
    for copy in copies:
        copy.unlink()
    profiles = list(scratch.glob(f"{name}.*.cpu"))
    if profiles:
        figures["profile"] = _profile(profiles[0])
    program = (
        [json.loads(line) for line in python_log.read_text().splitlines()]
        if python_log.exists()
        else []
    )
    if program:
        figures["python wall"] = sum(run["wall"] for run in program)
        figures["python cpu"] = sum(run["cpu"] for run in program)
    if python_profile and pstats_path.exists():
        figures["python hotspots"] = _python_hotspots(pstats_path)
    stderr_path.unlink()
    for trace in scratch.glob(f"{name}.*.trace"):
        trace.unlink()
    return figures


def breakdown(
    plugins: int, extra_environment: dict[str, str], python_profile: bool = False
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with cluster_factory() as factory, tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "site").mkdir()
        (scratch / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        server = serve(factory, plugins)
        _log_everything(server)
        project = make_project(scratch / "project", server, ROOT / "venv")
        project.environment.update(extra_environment)
        set_catalogue(project, plugins)
        arguments = {
            "up": ("up", "--yes", "--skip-preview"),
            "preview": ("preview", "--expect-no-changes"),
            "refresh": ("preview", "--refresh", "--expect-no-changes"),
            "add": ("up", "--yes", "--skip-preview"),
        }
        for operation in ("up", "preview", "refresh", "add"):
            if operation == "add":
                set_catalogue(project, plugins + 1)
            row = instrumented(
                project, server, scratch, operation, arguments[operation], python_profile
            )
            row["plugins"] = plugins
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    assert {row["operation"] for row in rows} == set(OPERATIONS)
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """One column per operation, one row per figure."""
    names = [row["operation"] for row in rows]
    lines = ["| figure | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]

    def add(label: str, values: Sequence[Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    add("wall (s)", [f"{row['wall']:.1f}" for row in rows])
    add(
        "Python program wall / CPU (s)",
        [f"{row.get('python wall', 0):.1f} / {row.get('python cpu', 0):.1f}" for row in rows],
    )
    for name in ("CLI CPU", *PROFILE_FUNCTIONS):
        add(
            f"{name} (CPU s)".replace("  ", "&nbsp;&nbsp;"),
            [f"{row.get('profile', {}).get(name, 0):.1f}" for row in rows],
        )
    add("snapshot writes", [str(row["snapshot writes"]) for row in rows])
    add("snapshot bytes written (MB)", [f"{row['snapshot bytes'] / 1e6:.0f}" for row in rows])
    add(
        "engine steps",
        [", ".join(f"{op} {n}" for op, n in sorted(row["steps"].items())) for row in rows],
    )
    add(
        "provider calls",
        [
            ", ".join(f"{call} {n}" for call, n in sorted(row["provider calls"].items()))
            for row in rows
        ],
    )
    add("SQL statements", [str(row.get("statements", 0)) for row in rows])
    add("transactions", [str(row.get("transactions", 0)) for row in rows])
    add("connections", [str(row.get("connections", 0)) for row in rows])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/breakdown.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=50, help="plugins (default 50)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an engine setting for every operation (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--python-profile",
        action="store_true",
        help="also profile the Python program (cProfile) and list its hottest functions",
    )
    args = parser.parse_args(argv)
    reason = missing_engine_reason()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    extra = dict(item.split("=", 1) for item in args.env)
    exit_on_sigterm()
    rows = breakdown(args.size, extra, args.python_profile)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(markdown(rows))
    for row in rows:
        for function, own, cumulative in row.get("python hotspots", []):
            print(f"{row['operation']}: {own:.2f} s own, {cumulative:.2f} s cumulative  {function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

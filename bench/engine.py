"""The four operations users run, through the real tools, side by side:
Pulumi (the engine scripts/build-engine.sh builds), OpenTofu with
cyrilgdn/terraform-provider-postgresql v1.27.0 (scripts/build-peer.sh) on the
same access layer (bench/hcl.py), and the plan as SQL into psql.

    python bench/engine.py [--sizes 8,50,200] [--tools pulumi,tofu,psql] [--write]

Each size gets a fresh PostgreSQL 16 per tool (the suite's own) and the
synthetic catalogue of bench/run.py with the push off, so only the access
layer is timed. The operations, in this order:

1. `up`: `pulumi up` from empty / `tofu apply` / the plan's SQL into psql;
2. `preview`: a no-op `pulumi preview` / `tofu plan -refresh=false` /
   `naapdb plan --format sql` (what a pull request gets);
3. `refresh`: `pulumi preview --refresh --expect-no-changes` / `tofu plan` /
   `naapdb verify` (the nightly drift check);
4. `add`: one more plugin in the catalogue, applied (`tofu apply` refreshes
   first, as it does by default; the SQL script is re-runnable and runs whole).

Pulumi runs as the project runs it: `PULUMI_SKIP_CHECKPOINTS=true`
(tests/engine.py's environment; `--design checkpoints` measures Pulumi's
default instead). After its first `up` it also times `bin/naapdb recover`
with nothing to recover: what CI's deploy job adds before each `pulumi up`.

`--write` replaces the engine section of bench/RESULTS.md (between its
markers); `--json FILE` also keeps every figure. docs/bench.md says what
each figure means and what the breakdown (bench/breakdown.py) found.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this folder is first on sys.path, where its modules (plan,
# push, limits, ...) would shadow top-level modules of those names: the
# checkout takes its place, so `bench`, `naapdb` and `tests` import from it.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    ROOMY_LIMITS,
    exit_on_sigterm,
    give_connections,
    synthetic_catalogue,
)
from bench.peer import make_tofu, missing_peer_reason  # noqa: E402
from bench.report import ENGINE_BEGIN, ENGINE_END, write_section  # noqa: E402
from bench.variants import DESIGNS, apply_design  # noqa: E402
from naapdb.plan import AccessPlan  # noqa: E402
from naapdb.stackfiles import load_stack_settings  # noqa: E402
from tests.engine import STACK, Project, make_project, missing_engine_reason  # noqa: E402
from tests.pgserver import ClusterFactory, PgServer, cluster_factory  # noqa: E402

DEFAULT_SIZES = (8, 50, 200)
TOOLS = ("pulumi", "tofu", "psql")
OPERATIONS = ("up", "add", "preview", "refresh")
OPERATION_NAMES = {
    "up": "first `up` / `apply` / SQL",
    "add": "add one plugin",
    "preview": "no-op preview / `plan -refresh=false` / `plan --format sql`",
    "refresh": "`preview --refresh` / `plan` / `verify`",
}
# Slots PostgreSQL keeps for superusers, and room for the admin's pool and
# the platform's identities (naapdb.limits): the synthetic stacks give every
# plugin one connection and the server a ceiling that fits them all.
HEADROOM = 100
SUITE_MAX_CONNECTIONS = 200
# A 200-plugin `pulumi up` from empty took about 15 minutes here.
OPERATION_TIMEOUT = 3 * 3600


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(figures: dict[str, float], operation: str, run: Callable[[], object]) -> None:
    """Wall seconds of `run`, and the CPU seconds of the processes it ran
    (the tool and its plugins; the server is no child): the second holds
    better on a machine shared with other work."""
    before = _children_cpu()
    start = time.perf_counter()
    run()
    figures[operation] = time.perf_counter() - start
    figures[f"{operation} cpu"] = _children_cpu() - before


def ceiling(plugins: int) -> int:
    """The synthetic stack's max_connections: its budget (one connection a
    plugin and one for its schema's push login, the platform's and the
    admin's defaults) fits with room."""
    return max(SUITE_MAX_CONNECTIONS, 2 * plugins + HEADROOM)


def set_catalogue(project: Project, plugins: int) -> None:
    """The synthetic catalogue of `plugins` plugins, with a connection
    budget that fits it (the server gets that ceiling: `serve`)."""
    import yaml

    project.edit_catalog(
        lambda entries: entries.__setitem__(slice(None), synthetic_catalogue(plugins))
    )
    path = project.path / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"]["naap-db:limits"] = {**ROOMY_LIMITS, "maxConnections": ceiling(plugins)}
    document["config"]["naap-db:push"] = {"mode": "off"}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def serve(factory: ClusterFactory, plugins: int) -> PgServer:
    """A fresh server whose max_connections is the synthetic stack's ceiling
    (the largest size, plus the plugin `add` brings)."""
    server = factory.start()
    give_connections(server, ceiling(plugins + 1))
    return server


def plan_of(project: Project) -> AccessPlan:
    return load_stack_settings(STACK, project.path).plan


def measure_pulumi(project: Project, plugins: int) -> dict[str, float]:
    """Seconds of each operation, and the resources in the stack."""
    project.timeout = OPERATION_TIMEOUT
    set_catalogue(project, plugins)
    figures: dict[str, float] = {}
    measure(figures, "up", project.up)
    figures["resources"] = len(project.resource_urns())
    measure(figures, "recover", lambda: recover_nothing(project))
    measure(figures, "preview", lambda: project.preview("--expect-no-changes"))
    measure(figures, "refresh", lambda: project.preview("--refresh", "--expect-no-changes"))
    set_catalogue(project, plugins + 1)
    measure(figures, "add", project.up)
    return figures


def recover_nothing(project: Project) -> None:
    """`bin/naapdb recover` on a stack with nothing to recover: one export,
    one query (docs/recovery.md)."""
    result = subprocess.run(
        [str(project.path / "bin" / "naapdb"), "recover", "--stack", STACK],
        cwd=project.path,
        env=project.environment,
        capture_output=True,
        text=True,
        timeout=project.timeout,
        check=False,
    )
    if result.returncode != 0 or "nothing to recover" not in result.stdout:
        raise RuntimeError(f"`naapdb recover` found work or failed: {result.stdout}{result.stderr}")


def measure_tofu(
    project: Project, server: PgServer, scratch: Path, plugins: int
) -> dict[str, float]:
    set_catalogue(project, plugins)
    tofu = make_tofu(scratch, server, plan_of(project))
    figures: dict[str, float] = {}
    measure(figures, "up", tofu.apply)
    figures["resources"] = tofu.resources()
    measure(figures, "preview", lambda: tofu.plan_no_changes("-refresh=false"))
    measure(figures, "refresh", tofu.plan_no_changes)
    set_catalogue(project, plugins + 1)
    tofu.configure(plan_of(project))
    measure(figures, "add", tofu.apply)
    return figures


def _naapdb(project: Project, *arguments: str, **environment: str) -> str:
    result = subprocess.run(
        [str(ROOT / "venv" / "bin" / "python"), "-m", "naapdb", *arguments],
        cwd=project.path,
        env={**_plain_environment(), **environment},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`naapdb {arguments[0]}` exited {result.returncode}: {result.stderr}")
    return result.stdout


def _plain_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "PG", "DATABASE_URL", "AWS_"))
    }


def _plan_sql(project: Project) -> str:
    return _naapdb(project, "plan", "--stack", STACK, "--format", "sql")


def _psql(server: PgServer, script: str) -> None:
    psql = str(server.bin_dir / "psql")  # the wheel's, of the server's own major
    command = [psql, "-q", "-v", "ON_ERROR_STOP=1", "-h", server.host, "-p", str(server.port)]
    command += ["-U", "postgres", "-d", "naap"]
    environment = {"PGPASSWORD": server.password, "PATH": "/usr/bin:/bin"}
    subprocess.run(
        command, input=script, env=environment, capture_output=True, text=True, check=True
    )


def measure_psql(project: Project, server: PgServer, plugins: int) -> dict[str, float]:
    """`naapdb plan --format sql` into psql (the render included), the
    render alone, `naapdb verify`, and the whole script again for N+1."""
    set_catalogue(project, plugins)
    figures: dict[str, float] = {}
    measure(figures, "up", lambda: _psql(server, _plan_sql(project)))
    figures["resources"] = float(len(plan_of(project).roles))
    measure(figures, "preview", lambda: _plan_sql(project))
    url = server.url()
    measure(
        figures, "refresh", lambda: _naapdb(project, "verify", "--stack", STACK, DATABASE_URL=url)
    )
    set_catalogue(project, plugins + 1)
    measure(figures, "add", lambda: _psql(server, _plan_sql(project)))
    return figures


def run(
    sizes: Sequence[int], tools: Sequence[str], design: str | None = None
) -> list[dict[str, Any]]:
    """One row per size and tool, printed to stderr as each finishes."""
    rows: list[dict[str, Any]] = []
    with cluster_factory() as factory, tempfile.TemporaryDirectory() as scratch:
        for plugins in sizes:
            base = Path(scratch) / f"p{plugins}"
            server = serve(factory, plugins)
            project = make_project(base / "pulumi", server, ROOT / "venv")
            if design:
                apply_design(project, design)
            for tool in tools:
                if tool != "pulumi":
                    server = serve(factory, plugins)
                if tool == "pulumi":
                    figures = measure_pulumi(project, plugins)
                elif tool == "tofu":
                    figures = measure_tofu(project, server, base / "tofu", plugins)
                else:
                    figures = measure_psql(project, server, plugins)
                server.stop()
                row = {"plugins": plugins, "tool": tool, **figures, "load": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _has_cpu(rows: Sequence[dict[str, Any]], tool: str) -> bool:
    return any(row["tool"] == tool and "up cpu" in row for row in rows)


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Plugins x operation, one column per tool and Pulumi's ratio to each."""
    tools = [tool for tool in TOOLS if any(row["tool"] == tool for row in rows)]
    others = [tool for tool in tools if tool != "pulumi"]
    header = ["plugins", "operation", *(f"{tool} (s)" for tool in tools)]
    header += [f"pulumi / {tool}" for tool in others if "pulumi" in tools]
    with_cpu = [tool for tool in tools if tool != "psql" and _has_cpu(rows, tool)]
    header += [f"{tool} CPU (s)" for tool in with_cpu]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for plugins in sorted({row["plugins"] for row in rows}):
        by_tool = {row["tool"]: row for row in rows if row["plugins"] == plugins}
        for operation in OPERATIONS:
            cells = [str(plugins), OPERATION_NAMES[operation]]
            cells += [
                _seconds(by_tool[tool][operation]) if tool in by_tool else "—" for tool in tools
            ]
            if "pulumi" in by_tool:
                for tool in others:
                    other = by_tool.get(tool)
                    cells.append(
                        f"{by_tool['pulumi'][operation] / other[operation]:.1f}x" if other else "—"
                    )
            for tool in with_cpu:
                cpu = by_tool.get(tool, {}).get(f"{operation} cpu")
                cells.append(_seconds(cpu) if cpu is not None else "—")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def load_line(rows: Sequence[dict[str, Any]]) -> str:
    """The 1-minute load average after each tool's run: other work on the
    machine slows every figure, Pulumi's CPU-bound ones most."""
    loads = [row["load"] for row in rows if "load" in row]
    if not loads:
        return ""
    return (
        f"Load average (1 min) after each tool's run: {min(loads):.1f} to {max(loads):.1f}, "
        f"on {os.cpu_count()} cores."
    )


def recover_line(rows: Sequence[dict[str, Any]]) -> str:
    """The no-op recovery CI's deploy job runs before each `pulumi up`."""
    cells = [
        f"{_seconds(row['recover'])} s ({_seconds(row['recover cpu'])} CPU s) at {row['plugins']}"
        for row in rows
        if row["tool"] == "pulumi" and "recover" in row
    ]
    if not cells:
        return ""
    return (
        "`bin/naapdb recover` with nothing to recover (CI's deploy job runs it before each "
        "`pulumi up`; docs/recovery.md): " + ", ".join(cells) + "."
    )


def resources_line(rows: Sequence[dict[str, Any]]) -> str:
    parts = []
    for row in rows:
        if row["tool"] in ("pulumi", "tofu"):
            parts.append(f"{row['tool']} {int(row['resources'])} at {row['plugins']}")
    return "Resources in state: " + ", ".join(parts) + "." if parts else ""


def section(rows: Sequence[dict[str, Any]], command: str, design: str | None = None) -> str:
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            ENGINE_BEGIN,
            "## The real engine, beside OpenTofu and psql",
            "",
            f"Generated by `{command}` on {date}; one run each, a fresh PostgreSQL 16",
            "per tool and size, the synthetic catalogue with the push off. Pulumi: the engine",
            "of scripts/build-engine.sh with a file backend, updates saving the state once",
            "(`PULUMI_SKIP_CHECKPOINTS=true`, the project's default); OpenTofu 1.10.7 and",
            "cyrilgdn/terraform-provider-postgresql 1.27.0 (scripts/build-peer.sh) with the",
            "local backend, on the same access layer (bench/hcl.py); psql: `naapdb plan",
            "--format sql` into psql, and `naapdb verify` for the drift check. What each",
            "operation is, and where Pulumi's time goes: docs/bench.md.",
            "",
            *([f"Pulumi ran with the design `{design}` (bench/designs.py).", ""] if design else []),
            *table(rows),
            "",
            recover_line(rows),
            resources_line(rows),
            load_line(rows),
            ENGINE_END,
        ]
    )


def write(text: str) -> None:
    write_section(text, ENGINE_BEGIN, ENGINE_END)


def _missing(tools: Sequence[str]) -> str | None:
    if "pulumi" in tools or "tofu" in tools or "psql" in tools:
        # Every tool's stack config lives in a Pulumi project copy.
        reason = missing_engine_reason()
        if reason is not None:
            return reason
    if "tofu" in tools:
        return missing_peer_reason()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/engine.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="8,50,200", help="plugin counts (default 8,50,200)")
    parser.add_argument("--tools", default=",".join(TOOLS), help="pulumi,tofu,psql (default all)")
    parser.add_argument(
        "--write", action="store_true", help="replace the engine section of RESULTS.md"
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument(
        "--design",
        choices=sorted(DESIGNS),
        help="run Pulumi with one of bench/designs.py's designs applied (default: as it is)",
    )
    args = parser.parse_args(argv)
    tools = [tool for tool in args.tools.split(",") if tool]
    unknown = sorted(set(tools) - set(TOOLS))
    if unknown:
        print(
            f"error: --tools: unknown {', '.join(unknown)} (choose from {', '.join(TOOLS)})",
            file=sys.stderr,
        )
        return 2
    reason = _missing(tools)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    sizes = [int(part) for part in args.sizes.split(",") if part]
    exit_on_sigterm()
    rows = run(sizes, tools, args.design)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    shown = [
        *([f"--design {args.design}"] if args.design else []),
        f"--sizes {args.sizes}",
        *(["--tools " + args.tools] if args.tools != ",".join(TOOLS) else []),
        "--write",
    ]
    text = section(rows, "python bench/engine.py " + " ".join(shown), args.design)
    print(text)
    if args.write:
        write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

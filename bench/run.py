"""naap-db at scale: how long the program, the plan, the push, verify and a
rotation take as the plugin catalogue grows, measured the way a user (or CI)
runs them, without the Pulumi CLI or Docker; and what one noisy plugin
costs its neighbours under the limits.

    python bench/run.py [--json] [--write] [--sizes 8,50,200,1000] [--repeat N] [--quick]

Every figure is the median of `--repeat` runs, with min and max; each figure
measured at several catalogue sizes also gets its growth ratio between the
two largest sizes (1000/200 by default; linear growth is 1000/200 = 5).
`--write` regenerates `bench/RESULTS.md`. The real PostgreSQL comes from the
test dependencies (`tests/pgserver.py`), AWS from moto, in process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests` and `naapdb` import from the checkout

DEFAULT_SIZES = (8, 50, 200, 1000)
VERIFY_SIZES = (8, 200, 1000)
STACKS = ("dev", "prod")
PLAN_STACK = "prod"  # alternating rotation: the larger plan (two logins per identity)
RESULTS = ROOT / "bench" / "RESULTS.md"
# bench/engine.py writes the real engine's figures between these markers;
# regenerating the rest keeps them.
ENGINE_BEGIN, ENGINE_END = "<!-- engine:begin -->", "<!-- engine:end -->"
# bench/pooler.py's section, kept the same way.
POOLER_BEGIN, POOLER_END = "<!-- pooler:begin -->", "<!-- pooler:end -->"
DEFAULT_REPEAT = 3
ROTATIONS = 10
QUICK_ROTATIONS = 2
WORKER_MEMORY_LIMIT = 8 * 1024**3  # address space of one program evaluation


# -- figures -----------------------------------------------------------------


@dataclass
class Figure:
    """One measured quantity at one catalogue size, over several runs."""

    section: str
    name: str
    unit: str
    size: int | None
    values: list[float]
    note: str = ""

    @property
    def median(self) -> float:
        return float(statistics.median(self.values))

    @property
    def min(self) -> float:
        return float(min(self.values))

    @property
    def max(self) -> float:
        return float(max(self.values))

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "size": self.size,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": len(self.values),
            "values": self.values,
            "note": self.note,
        }


@dataclass(frozen=True)
class Growth:
    """median(figure at `to`) / median(figure at `source`); linear is to/source."""

    section: str
    name: str
    source: int
    to: int
    ratio: float

    @property
    def linear(self) -> float:
        return self.to / self.source

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "from": self.source,
            "to": self.to,
            "ratio": self.ratio,
            "linear": self.linear,
        }


@dataclass(frozen=True)
class Target:
    """A target of issue 8 and whether this run met it (None: not measured)."""

    name: str
    limit: str
    measured: str
    met: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "limit": self.limit, "measured": self.measured, "met": self.met}


@dataclass
class Report:
    """Everything one benchmark run measured."""

    sizes: tuple[int, ...]
    repeat: int
    quick: bool
    timeout: float = 600.0
    figures: list[Figure] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    per_plugin_types: dict[str, dict[str, float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    date: str = ""

    def add(
        self,
        section: str,
        name: str,
        unit: str,
        size: int | None,
        values: Sequence[float],
        note: str = "",
    ) -> None:
        self.figures.append(Figure(section, name, unit, size, [float(v) for v in values], note))

    def find(self, section: str, name: str, size: int | None) -> Figure | None:
        for figure in self.figures:
            if (figure.section, figure.name, figure.size) == (section, name, size):
                return figure
        return None

    def growths(self) -> list[Growth]:
        """The growth between the two largest sizes of every figure measured
        at two sizes or more (1000 over 200 with the default sizes)."""
        by_figure: dict[tuple[str, str], dict[int, Figure]] = {}
        for figure in self.figures:
            if figure.size is not None:
                by_figure.setdefault((figure.section, figure.name), {})[figure.size] = figure
        found = []
        for (section, name), at in by_figure.items():
            if len(at) < 2:
                continue
            source, to = _growth_pair(sorted(at))
            if at[source].median > 0:
                found.append(Growth(section, name, source, to, at[to].median / at[source].median))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "machine": self.machine,
            "sizes": list(self.sizes),
            "repeat": self.repeat,
            "quick": self.quick,
            "timeout": self.timeout,
            "figures": [figure.as_dict() for figure in self.figures],
            "growth": [growth.as_dict() for growth in self.growths()],
            "resources_per_plugin_by_type": self.per_plugin_types,
            "targets": [target.as_dict() for target in targets(self)],
            "problems": [{"section": s, "problem": p} for s, p in self.problems],
        }


def _growth_pair(sizes: list[int]) -> tuple[int, int]:
    """200 -> 1000 when both were measured, else the two largest sizes."""
    if 200 in sizes and 1000 in sizes:
        return 200, 1000
    return sizes[-2], sizes[-1]


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


# Hundreds of plugins at the default limits overflow the committed stacks'
# servers (the connection budget, naapdb.limits); the benchmarks measure
# size, not load, so their synthetic stacks take PostgreSQL's largest ceiling.
ROOMY_LIMITS: dict[str, Any] = {"plugins": {"connections": 1}, "maxConnections": 262_143}


def synthetic_catalogue(plugins: int) -> list[dict[str, Any]]:
    """`base` owning `public`, and `plugins` plugins `p<i>` each owning
    `plugin_p<i>` and reading `public`: the shape of the real catalogue."""
    catalogue: list[dict[str, Any]] = [{"plugin": "base", "schema": "public"}]
    catalogue += [
        {"plugin": f"p{i}", "schema": f"plugin_p{i}", "reads": ["public"]} for i in range(plugins)
    ]
    return catalogue


def _module_missing(module: str) -> str | None:
    """Why a module another area builds cannot be imported yet (None: it can)."""
    try:
        __import__(module)
    except ImportError as error:
        return f"{module} is not available ({error})"
    return None


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: the checkout importable, nothing
    of the caller's database or AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.pop("DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


# -- program evaluation ------------------------------------------------------


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
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "program"]
    command += ["--stack", stack, "--size", str(size)]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=_env(),
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


# -- plan --------------------------------------------------------------------


def bench_plan(report: Report) -> None:
    """The plan of the prod stack (the larger one: two logins per identity)
    built, rendered as text and as SQL in process, and `plan --format sql` as
    a user runs it (a fresh `python -m naapdb`, wall time)."""
    from naapdb.render import plan_to_text
    from naapdb.settings import parse_settings
    from naapdb.stackfiles import read_raw_config

    sql_missing = _module_missing("naapdb.sql")
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
        with _project_dir(size) as project:
            for _ in range(report.repeat):
                cli.append(_plan_cli(project, "text" if sql_missing else "sql"))
        report.add("plan", "settings and plan", "s", size, build)
        report.add("plan", "text", "s", size, text)
        if sql:
            report.add("plan", "sql", "s", size, sql)
        report.add(
            "plan", f"`plan --format {'text' if sql_missing else 'sql'}` (CLI)", "s", size, cli
        )


@contextlib.contextmanager
def _project_dir(size: int) -> Iterator[Path]:
    """A copy of the project's stack files with a synthetic catalogue."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="naapdb-bench-") as directory:
        project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
        project["config"]["naap-db:plugins"] = {"value": synthetic_catalogue(size)}
        (Path(directory) / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        for stack in STACKS:
            stack_doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
            config = stack_doc["config"]
            config["naap-db:limits"] = {**(config.get("naap-db:limits") or {}), **ROOMY_LIMITS}
            (Path(directory) / f"Pulumi.{stack}.yaml").write_text(
                yaml.safe_dump(stack_doc, sort_keys=False)
            )
        yield Path(directory)


def _timed_cli(arguments: Sequence[str], **environment: str) -> float:
    """Wall time of `python -m naapdb ARGUMENTS` as a user runs it (a fresh
    interpreter), with `environment` added (DATABASE_URL, never argv)."""
    command = [sys.executable, "-m", "naapdb", *arguments]
    seconds, result = timed(
        lambda: subprocess.run(
            command, capture_output=True, env=_env(**environment), cwd=ROOT, check=False
        )
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`python -m naapdb {arguments[0]}` exited {result.returncode}: "
            f"{result.stderr.decode()[-300:]}"
        )
    return float(seconds)


def _plan_cli(project: Path, output_format: str) -> float:
    return _timed_cli(
        ["plan", "--stack", PLAN_STACK, "--format", output_format, "--project", str(project)]
    )


# -- push --------------------------------------------------------------------

PUSH_STACK = "dev"  # the sample migrations are for the committed catalogue


def _prepared_server(factory: Any, plan: Any) -> tuple[Any, str]:
    """A fresh database `naap` with the plan applied by the superuser, as
    `pulumi up` leaves it, and the migrator's URL (with a password set here;
    each schema's push login with the one `tests.deployed.PUSH_KEY` derives)."""
    import secrets

    from naapdb import names
    from tests.deployed import deploy

    server = factory.start()
    password = secrets.token_urlsafe(18)
    deploy(server, plan, {names.MIGRATOR: password}, secrets.token_urlsafe(18))
    return server, server.url(user=names.MIGRATOR, password=password)


def _push_in_process(url: str, source: Path) -> tuple[float, int]:
    """`python -m naapdb push` run in this process (no interpreter start):
    wall time and the statements it sent."""
    import io

    from naapdb.__main__ import main as naapdb_main
    from naapdb.pushkey import PUSH_KEY_VARIABLE
    from tests.deployed import PUSH_KEY

    os.environ["DATABASE_URL"], os.environ[PUSH_KEY_VARIABLE] = url, PUSH_KEY
    try:
        with counting_statements() as sent, contextlib.redirect_stdout(io.StringIO()) as out:
            seconds, code = timed(
                lambda: naapdb_main(["push", "--source", str(source), "--project", str(ROOT)])
            )
    finally:
        del os.environ["DATABASE_URL"], os.environ[PUSH_KEY_VARIABLE]
    if code != 0:
        raise RuntimeError(f"push exited {code}: {out.getvalue()[-300:]}")
    return seconds, len(sent)


def _push_cli(url: str, source: Path) -> float:
    from tests.deployed import PUSH_KEY

    return _timed_cli(
        ["push", "--source", str(source), "--project", str(ROOT)],
        DATABASE_URL=url,
        NAAPDB_PUSH_KEY=PUSH_KEY,
    )


def bench_push(report: Report) -> None:
    """The full push of the sample migrations on a fresh database with the
    plan applied, then the no-op push, in process and as a user runs it."""
    missing = _module_missing("naapdb.commands.push") or _module_missing("naapdb.sql")
    if missing:
        report.problems.append(("push", f"not measured: {missing}"))
        return
    from naapdb import push as push_module
    from naapdb.stackfiles import load_stack_settings
    from tests.pgserver import cluster_factory

    source = ROOT / "migrations"
    settings = load_stack_settings(PUSH_STACK, ROOT)
    migrations = push_module.discover(source, settings.catalog)
    if not migrations:
        report.problems.append(("push", f"not measured: no migration under {source}"))
        return
    noop_runs = 2 if report.quick else 5
    full, full_sent, noop, noop_sent, cli = [], [], [], [], []
    with cluster_factory() as factory:
        for _ in range(report.repeat):
            server, url = _prepared_server(factory, settings.plan)
            seconds, sent = _push_in_process(url, source)
            full.append(seconds)
            full_sent.append(sent)
            for _ in range(noop_runs):
                seconds, sent = _push_in_process(url, source)
                noop.append(seconds)
                noop_sent.append(sent)
            cli += [_push_cli(url, source) for _ in range(noop_runs)]
            server.stop()
    files = f"{len(migrations)} files"
    report.add("push", "full push", "s", None, full, note=files)
    report.add("push", "full push statements sent", "count", None, full_sent, note=files)
    report.add("push", "no-op push", "s", None, noop)
    report.add("push", "no-op push statements sent", "count", None, noop_sent)
    report.add("push", "no-op `python -m naapdb push` (CLI)", "s", None, cli)


# -- verify ------------------------------------------------------------------

VERIFY_STACK = "dev"


def verify_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """Verify runs at 8, 200 and 1,000 schemas (those of `--sizes`), else at
    every size asked for."""
    return tuple(size for size in sizes if size in VERIFY_SIZES) or tuple(sizes)


def _give_connections(server: Any, needed: int) -> None:
    """Restart a suite server (200 connections) with at least `needed`
    (pg_ctl restart keeps its port and socket options)."""
    from tests.pgserver import _bin_dir, _run_as

    if needed <= 200:
        return
    server.execute(f"ALTER SYSTEM SET max_connections = {int(needed)}", dbname="postgres")
    # The server's output goes to its log: a pipe would stay open as long
    # as the restarted server runs.
    log = server.data_dir / "server.log"
    restart = [str(_bin_dir() / "pg_ctl"), "-D", str(server.data_dir), "-l", str(log)]
    subprocess.run(
        [*restart, "-m", "fast", "-w", "restart"],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **_run_as(),  # type: ignore[arg-type]
    )


def _verify_cli(url: str, project: Path) -> float:
    return _timed_cli(
        ["verify", "--stack", VERIFY_STACK, "--project", str(project)], DATABASE_URL=url
    )


def bench_verify(report: Report) -> None:
    """`verify` of a database built from the plan of N schemas (a fresh
    server each, applied by the superuser), against that plan: the time of
    `naapdb.verify.verify` on an open connection and of the command as a
    user runs it, and the queries it sent (its own count)."""
    missing = _module_missing("naapdb.verify") or _module_missing("naapdb.sql")
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
            _give_connections(server, settings.budget.total + settings.budget.ceiling.reserved)
            server.execute(plan_to_sql(plan))
            seconds, queries, differences, cli = [], [], [], []
            with psycopg.connect(server.conninfo(), autocommit=True) as connection:
                for _ in range(report.repeat):
                    elapsed, result = timed(lambda: verify.verify(connection, plan))  # noqa: B023
                    seconds.append(elapsed)
                    queries.append(result.queries)
                    differences.append(len(result.differences))
            with _project_dir(size) as project:
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


# -- rotation ----------------------------------------------------------------

ROTATION_CLIENTS = 8
ROTATION_IDENTITY = "naap_app"


@contextlib.contextmanager
def _moto_secretsmanager() -> Iterator[Any]:
    """Secrets Manager under moto, in process, with fake credentials; the
    caller's AWS settings (and the rotation's NAAPDB_ ones) are put back
    afterwards."""
    from moto import mock_aws

    saved = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "NAAPDB_"))}
    for variable in [k for k in saved if k.startswith("AWS_")]:
        del os.environ[variable]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    try:
        with mock_aws():
            import boto3

            yield boto3.client("secretsmanager", region_name="us-east-1")
    finally:
        for variable in [k for k in os.environ if k.startswith(("AWS_", "NAAPDB_"))]:
            del os.environ[variable]
        os.environ.update(saved)


def _rotation_secret(server: Any, client: Any, plan: Any) -> str:
    """What the prod stack leaves for one identity: its logins with
    passwords, the master secret, and the identity's secret on `_a`."""
    import secrets

    from psycopg import sql

    from naapdb.rotate import DbSecret
    from naapdb.sql import plan_to_sql

    server.execute(plan_to_sql(plan))
    logins = plan.logins_of(ROTATION_IDENTITY)
    password = secrets.token_hex(20)
    with server.connect() as connection:
        for login in logins:
            connection.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(login), sql.Literal(password)
                )
            )
    master = client.create_secret(
        Name="rds!db-bench",
        SecretString=json.dumps({"username": "postgres", "password": server.password}),
    )
    # What Pulumi tells the Lambda: the only endpoint the rotation trusts
    # (RDS's master secret holds no host; naapdb/trust.py).
    os.environ["NAAPDB_DATABASE_ENDPOINT"] = f"{server.host}:{server.port}/{plan.database}"
    document = DbSecret(
        host=server.host,
        port=server.port,
        dbname=plan.database,
        username=logins[0],
        password=password,
        masterarn=master["ARN"],
        sslmode="verify-full",
    )
    created = client.create_secret(
        Name=f"naap-db/bench/{ROTATION_IDENTITY}", SecretString=document.to_json()
    )
    return str(created["ARN"])


def bench_rotation(report: Report) -> None:
    """Alternating rotations of `naap_app`'s secret (moto, a real server)
    while client threads connect continuously with its current version:
    `tests/rotation_load.py`, the load test of the credentials issue."""
    missing = _module_missing("naapdb.rotate") or _module_missing("tests.rotation_load")
    if missing:
        report.problems.append(("rotation", f"not measured: {missing}"))
        return
    from naapdb.plan import Rotation, build_plan
    from naapdb.stackfiles import load_stack_settings
    from tests.rotation_load import run_rotation_load
    from tests.tlsca import make_ca
    from tests.tlspostgres import BUILDS
    from tests.tlsserver import tls_server

    # The rotation connects verify-full only: a TLS server whose test CA is
    # trusted out loud, as the Lambda trusts its bundled RDS CA; PostgreSQL
    # 16 (the product's) built with OpenSSL (tests/tlspostgres.py).
    build = BUILDS["16"]
    if not build.installed():
        report.problems.append(
            ("rotation", "not measured: run `venv/bin/python -m tests.tlspostgres 16` (needs npm)")
        )
        return
    plan = build_plan(load_stack_settings("prod", ROOT).catalog, Rotation.ALTERNATING)
    rotations = QUICK_ROTATIONS if report.quick else ROTATIONS
    per_rotation: list[float] = []
    connections: list[int] = []
    failures: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        ca = make_ca(Path(scratch) / "ca", ("localhost",))
        os.environ["NAAPDB_SSLROOTCERT"] = str(ca.ca_cert)
        os.environ["NAAPDB_TRUST_CA_BUNDLE"] = "1"
        for _ in range(report.repeat):
            with tls_server(build, ca) as server, _moto_secretsmanager() as client:
                secret_id = _rotation_secret(server, client, plan)
                load = run_rotation_load(
                    client, secret_id, clients=ROTATION_CLIENTS, rotations=rotations, pause=0.2
                )
            if load.timed_out or load.rotations != rotations:
                raise RuntimeError(f"only {load.rotations} of {rotations} rotations ran")
            per_rotation += load.rotation_seconds
            connections.append(load.connections)
            failures.append(load.failures)
            for error in load.errors:
                print(f"rotation: a client failed: {error}", file=sys.stderr)
    note = f"{ROTATION_CLIENTS} clients, {rotations} rotations a run"
    report.add("rotation", "time per rotation", "s", None, per_rotation, note=note)
    report.add("rotation", "connections made", "count", None, connections, note=note)
    report.add("rotation", "failed connections", "count", None, failures, note=note)


# -- limits ------------------------------------------------------------------

NOISY_PLUGIN, NOISY_SCHEMA = "wallet", "plugin_wallet"
QUIET_PLUGIN, QUIET_SCHEMA = "community", "plugin_community"
# The noisy plugin's own limits (its catalogue entry): small, so a run is quick.
NOISY_LIMITS = {"connections": 3, "statementTimeout": "1s", "idleInTransactionTimeout": "1s"}


def bench_limits(report: Report) -> None:
    """One plugin floods its connections, runs a query past its statement
    timeout and idles in a transaction holding a row lock, while another
    plugin's clients and the push keep connecting (a real server):
    `tests/limits_load.py`, the load test of the noisy-neighbours issue."""
    missing = _module_missing("naapdb.limits") or _module_missing("tests.limits_load")
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


# -- statements sent ---------------------------------------------------------


@contextlib.contextmanager
def counting_statements() -> Iterator[list[str]]:
    """Every statement a psycopg cursor sends in this process while active
    (`Connection.execute` goes through `Cursor.execute`); a multi-statement
    string sent at once counts as one."""
    import psycopg

    sent: list[str] = []
    originals = {name: getattr(psycopg.Cursor, name) for name in ("execute", "executemany")}

    def wrap(name: str) -> Callable[..., Any]:
        original = originals[name]

        def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(name)
            return original(self, query, *args, **kwargs)

        return counted

    for name in originals:
        setattr(psycopg.Cursor, name, wrap(name))
    try:
        yield sent
    finally:
        for name, original in originals.items():
            setattr(psycopg.Cursor, name, original)


# -- the report --------------------------------------------------------------


def targets(report: Report) -> list[Target]:
    """Issue 8's targets, checked against this run's medians."""
    found: list[Target] = []

    def check(
        name: str, limit: str, figure: Figure | None, ok: Callable[[float], bool], unit: str = "s"
    ) -> None:
        if figure is None:
            found.append(Target(name, limit, "not measured", None))
        else:
            found.append(Target(name, limit, f"{_number(figure.median)} {unit}", ok(figure.median)))

    growth = {(g.section, g.name): g for g in report.growths()}
    for stack in STACKS:
        section = f"program {stack}"
        check(
            f"{stack} program, 200 plugins",
            "< 5 s",
            report.find(section, "evaluation", 200),
            lambda v: v < 5,
        )
        ratio = growth.get((section, "evaluation"))
        if ratio is None or (ratio.source, ratio.to) != (200, 1000):
            found.append(
                Target(f"{stack} program growth 200 -> 1000", "<= 5.5x", "not measured", None)
            )
        else:
            found.append(
                Target(
                    f"{stack} program growth 200 -> 1000",
                    "<= 5.5x",
                    f"{ratio.ratio:.2f}x",
                    ratio.ratio <= 5.5,
                )
            )
        check(
            f"{stack} resources per plugin",
            "<= 20",
            report.find(section, "resources per plugin", None),
            lambda v: v <= 20,
            unit="",
        )
    check(
        "`plan --format sql`, 1000 plugins",
        "< 2 s",
        report.find("plan", "`plan --format sql` (CLI)", 1000),
        lambda v: v < 2,
    )
    check("plan_to_sql, 1000 plugins", "< 2 s", report.find("plan", "sql", 1000), lambda v: v < 2)
    queries = [
        f.median for f in report.figures if f.section == "verify" and f.name == "queries sent"
    ]
    if queries:
        found.append(
            Target(
                "verify queries, constant in the catalogue",
                "same at every size",
                ", ".join(_number(q) for q in queries),
                len(set(queries)) == 1,
            )
        )
    else:
        found.append(
            Target(
                "verify queries, constant in the catalogue",
                "same at every size",
                "not measured",
                None,
            )
        )
    check("verify, 1000 schemas", "< 2 s", report.find("verify", "verify", 1000), lambda v: v < 2)
    check(
        "`python -m naapdb verify`, 1000 schemas",
        "< 2 s",
        report.find("verify", "`python -m naapdb verify` (CLI)", 1000),
        lambda v: v < 2,
    )
    check("no-op push", "< 0.3 s", report.find("push", "no-op push", None), lambda v: v < 0.3)
    check(
        "no-op `python -m naapdb push` (CLI)",
        "< 0.3 s",
        report.find("push", "no-op `python -m naapdb push` (CLI)", None),
        lambda v: v < 0.3,
    )
    check(
        "failed connections during rotations",
        "0",
        report.find("rotation", "failed connections", None),
        lambda v: v == 0,
        unit="",
    )
    check(
        "failures elsewhere while one plugin is at its limits",
        "0",
        report.find("limits", "failures elsewhere", None),
        lambda v: v == 0,
        unit="",
    )
    check(
        "connections refused past a plugin's limit",
        "all 5",
        report.find("limits", "noisy connections refused", None),
        lambda v: v == 5,
        unit="",
    )
    return found


def _number(value: float) -> str:
    if value == int(value) and abs(value) >= 1:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        lines.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
    return "\n".join(lines)


def figures_table(report: Report) -> str:
    growth: dict[tuple[str, str, int | None], Growth] = {
        (g.section, g.name, g.to): g for g in report.growths()
    }
    rows = []
    for figure in report.figures:
        ratio = growth.get((figure.section, figure.name, figure.size))
        rows.append(
            [
                figure.section,
                figure.name,
                "-" if figure.size is None else str(figure.size),
                _number(figure.median),
                _number(figure.min),
                _number(figure.max),
                figure.unit,
                f"{ratio.ratio:.2f}x ({ratio.to}/{ratio.source})" if ratio else "",
            ]
        )
    return _table(["section", "figure", "size", "median", "min", "max", "unit", "growth"], rows)


def targets_table(report: Report) -> str:
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[t.name, t.limit, t.measured, verdict[t.met]] for t in targets(report)]
    return _table(["target", "limit", "measured (median)", ""], rows)


def per_plugin_table(report: Report) -> str:
    kinds = sorted({kind for types in report.per_plugin_types.values() for kind in types})
    rows = [
        [kind, *(_number(report.per_plugin_types.get(stack, {}).get(kind, 0)) for stack in STACKS)]
        for kind in kinds
    ]
    return _table(["resource type", *STACKS], rows)


def text_report(report: Report) -> str:
    parts = [figures_table(report), "", targets_table(report)]
    if report.problems:
        parts += ["", *(f"problem: {section}: {problem}" for section, problem in report.problems)]
    return "\n".join(parts) + "\n"


def markdown_report(report: Report, command: str) -> str:
    machine = report.machine
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `{command}` on {report.date}; see [docs/bench.md](../docs/bench.md)",
        "for what each figure means. Regenerate with `python bench/run.py --write`.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} cores",
        f"- Python {machine.get('python', '?')} on {machine.get('platform', '?')}",
        f"- PostgreSQL {machine.get('postgresql', '?')} (the tests' wheel, local TCP, fsync off)",
        f"- Pulumi SDK {machine.get('pulumi', '?')} (mocks; no engine, no providers)",
        "",
        "## Figures",
        "",
        f"Median of {report.repeat} run(s), with min and max. Growth: median at the",
        "largest size over the median at the one before (1000/200; linear is 5x).",
        "",
        figures_table(report),
        "",
        "## Targets",
        "",
        targets_table(report),
        "",
    ]
    if report.per_plugin_types:
        lines += [
            "## Resources per plugin, by type",
            "",
            "How many of each registered resource one more plugin adds.",
            "",
            per_plugin_table(report),
            "",
        ]
    if report.problems:
        lines += ["## Not measured", ""]
        lines += [f"- {section}: {problem}" for section, problem in report.problems]
        lines.append("")
    return "\n".join(lines)


def _engine_section() -> str:
    """The figures bench/engine.py and bench/pooler.py last wrote, if any."""
    current = RESULTS.read_text() if RESULTS.exists() else ""
    kept = ""
    for begin, end in ((ENGINE_BEGIN, ENGINE_END), (POOLER_BEGIN, POOLER_END)):
        if begin in current and end in current:
            kept += "\n" + begin + current.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
    return kept


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": _postgresql_version(),
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["pulumi"] = version("pulumi")
    return info


def _postgresql_version() -> str:
    try:
        from tests.pgserver import _bin_dir

        output = subprocess.run(
            [str(_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError, ImportError):
        return "unknown"
    return output.strip().rsplit(" ", 1)[-1]


# -- main --------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Report], None]] = {
    "program": bench_program,
    "plan": bench_plan,
    "push": bench_push,
    "verify": bench_verify,
    "rotation": bench_rotation,
    "limits": bench_limits,
}


def run_benchmarks(
    sizes: tuple[int, ...],
    repeat: int,
    quick: bool,
    only: Sequence[str] = (),
    timeout: float = 600.0,
) -> Report:
    report = Report(sizes=sizes, repeat=repeat, quick=quick, timeout=timeout)
    report.date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report.machine = machine_info()
    for name, section in SECTIONS.items():
        if only and name not in only:
            continue
        try:
            section(report)
        except Exception as error:
            report.problems.append((name, f"{type(error).__name__}: {error}"))
            traceback.print_exc(file=sys.stderr)
    return report


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers, e.g. 8,50,200,1000")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write", action="store_true", help="regenerate bench/RESULTS.md")
    parser.add_argument(
        "--sizes", type=_sizes, default=DEFAULT_SIZES, help="plugin counts, default 8,50,200,1000"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULT_REPEAT, help="runs per figure (default 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer rotations ({QUICK_ROTATIONS}) and no-op pushes: checks the benchmark works",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds one program evaluation may take (default 600); larger sizes are then skipped",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--worker", choices=("program",), help=argparse.SUPPRESS)
    parser.add_argument("--stack", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker == "program":
        # A catalogue that makes the program blow up must not take the
        # (shared) machine down with it: a MemoryError ends the run instead.
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
        print(json.dumps(program_worker(args.stack, args.size)))
        return 0
    if args.repeat < 1:
        print("error: --repeat must be at least 1", file=sys.stderr)
        return 2
    only = [part for part in args.only.split(",") if part]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        print(f"error: --only: unknown section(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    report = run_benchmarks(args.sizes, args.repeat, args.quick, only, args.timeout)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        sys.stdout.write(text_report(report))
    if args.write:
        command = "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        RESULTS.write_text(markdown_report(report, command.strip()) + _engine_section())
        print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

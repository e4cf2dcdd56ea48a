"""What every section of the benchmark shares: the synthetic catalogue, the
clock, the environment of child processes and the counting of statements."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (8, 50, 200, 1000)
STACKS = ("dev", "prod")
DEFAULT_REPEAT = 3


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


def module_missing(module: str) -> str | None:
    """Why a module another area builds cannot be imported yet (None: it can)."""
    try:
        __import__(module)
    except ImportError as error:
        return f"{module} is not available ({error})"
    return None


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: the checkout importable, nothing
    of the caller's database or AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.pop("DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@contextlib.contextmanager
def project_dir(size: int) -> Iterator[Path]:
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


def timed_cli(arguments: Sequence[str], **environment: str) -> float:
    """Wall time of `python -m naapdb ARGUMENTS` as a user runs it (a fresh
    interpreter), with `environment` added (DATABASE_URL, never argv)."""
    command = [sys.executable, "-m", "naapdb", *arguments]
    seconds, result = timed(
        lambda: subprocess.run(
            command, capture_output=True, env=child_env(**environment), cwd=ROOT, check=False
        )
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`python -m naapdb {arguments[0]}` exited {result.returncode}: "
            f"{result.stderr.decode()[-300:]}"
        )
    return float(seconds)


def give_connections(server: Any, needed: int) -> None:
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


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so a stopped benchmark still stops the
    servers it started and kills the tool in flight (`subprocess.run` does)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

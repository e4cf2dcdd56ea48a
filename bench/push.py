"""Section `push`: the schema push of the sample migrations, full and no-op."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from bench.common import ROOT, counting_statements, module_missing, timed, timed_cli
from bench.report import Report

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

    return timed_cli(
        ["push", "--source", str(source), "--project", str(ROOT)],
        DATABASE_URL=url,
        NAAPDB_PUSH_KEY=PUSH_KEY,
    )


def bench_push(report: Report) -> None:
    """The full push of the sample migrations on a fresh database with the
    plan applied, then the no-op push, in process and as a user runs it."""
    missing = module_missing("naapdb.commands.push") or module_missing("naapdb.sql")
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

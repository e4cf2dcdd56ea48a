"""A `pulumi up` killed midway, then the documented way back, through the
real engine (`cli` marker): a copy of the project on an `external` stack on
the suite's PostgreSQL 16, updates run as the README says
(`PULUMI_SKIP_CHECKPOINTS=true`, tests/engine.py), so the engine saves the
state only at the end and a SIGKILL leaves every object it created unknown
to the state, and the stack locked.

Each test kills the CLI and every process it started (its plugins, the
language host, the program: what a vanished CI runner or an out-of-memory
kill takes), shows that the state lacks what the server has, runs
`bin/naapdb recover`, then `pulumi up`, and checks that `pulumi preview
--expect-no-changes` and `bin/naapdb verify` pass and that no row was lost.
The tests run in file order on one deployment: the first `up` from empty,
an update adding plugins (recovered with `--unlock`, as CI's deploy job
does), an update removing them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from naapdb.stackfiles import load_stack_settings
from tests.engine import STACK, Project, make_project, require_engine
from tests.pgserver import ClusterFactory, PgServer

pytestmark = pytest.mark.cli

ENGINE_POSTGRES = "16"
EXTRA_PLUGINS = [
    {"plugin": f"extra{index}", "schema": f"plugin_extra{index}", "reads": ["public"]}
    for index in range(8)
]
# Polls of the server while `pulumi up` runs.
POLL_SECONDS = 0.02
# The first `up` creates the copy's venv before any role.
WAIT_SECONDS = 600


@pytest.fixture(scope="module")
def project(
    pg_factories: Callable[[str], ClusterFactory], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    require_engine()
    server = pg_factories(ENGINE_POSTGRES).start()
    yield make_project(tmp_path_factory.mktemp("recover"), server)
    server.stop()


def _roles(server: PgServer, pattern: str = "%") -> set[str]:
    with server.connect() as admin:
        return _named(admin, pattern)


def _named(admin: psycopg.Connection[Any], pattern: str = "%") -> set[str]:
    """The roles LIKE `pattern`, the server's own aside."""
    rows = admin.execute(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE %s AND rolname <> 'postgres' "
        "AND rolname NOT LIKE 'pg\\_%%'",
        (pattern,),
    ).fetchall()
    return {str(row[0]) for row in rows}


def _descendants(pid: int) -> list[int]:
    """Every process started under `pid`, read from /proc (the plugins run in
    process groups of their own, so killing the CLI's group misses them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def _up_killed_when(project: Project, ready: Callable[[psycopg.Connection[Any]], bool]) -> str:
    """Start `pulumi up` as a user does, SIGKILL it and everything it started
    as soon as `ready(admin)` holds (polled on one open connection), and
    return what it printed. Fails if the update ended first (the kill would
    prove nothing)."""
    log = project.path.parent / "killed-up.log"
    with log.open("w") as output, project.server.connect() as admin:
        up = subprocess.Popen(
            ["pulumi", "up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive"],
            cwd=project.path,
            env=project.environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + WAIT_SECONDS
        while not ready(admin):
            assert up.poll() is None, f"`pulumi up` ended before the kill:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(POLL_SECONDS)
        victims = [up.pid, *_descendants(up.pid)]
        assert up.poll() is None, f"`pulumi up` ended before the kill:\n{log.read_text()}"
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        up.wait(timeout=60)
    deadline = time.monotonic() + 60
    while not all(_gone(pid) for pid in victims):
        assert time.monotonic() < deadline, "a killed process did not go away"
        time.sleep(0.05)
    return log.read_text()


def _state_roles(project: Project) -> set[str]:
    state = json.loads(project.pulumi("stack", "export").stdout)
    return {
        str(resource["outputs"]["name"])
        for resource in state["deployment"].get("resources", [])
        if resource["type"] == "postgresql:index/role:Role"
    }


def _locked(project: Project) -> bool:
    locks = project.path.parent / "state" / ".pulumi" / "locks"
    return any(locks.rglob("*.json"))


def _recover(project: Project, *extra: str) -> str:
    environment = {k: v for k, v in project.environment.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [str(project.path / "bin" / "naapdb"), "recover", "--stack", STACK, *extra],
        cwd=project.path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def _imported(printed: str) -> set[str]:
    """The roles `recover` said it imported (`import: TYPE NAME (role R)`)."""
    return {
        line.rsplit(" ", 1)[1].rstrip(")")
        for line in printed.splitlines()
        if line.startswith("import: postgresql:index/role:Role")
    }


def _converged(project: Project) -> None:
    """The next `pulumi up` completes, then nothing is left to change and
    the live database is the plan."""
    project.up()
    project.preview("--expect-no-changes")
    verify = project.naapdb("verify", "--stack", STACK, url=project.server.url())
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _rows(server: PgServer) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table outside the system schemas."""
    with server.connect() as admin:
        tables = admin.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        ).fetchall()
        return {
            str(table): admin.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # type: ignore[arg-type]
            for (table,) in tables
        }


def test_a_first_up_killed_midway_needs_only_recover(project: Project) -> None:
    """Killed once a dozen roles exist: the state holds nothing (not even
    the admin provider) and the stack is locked. `recover` (no option: the
    lock is this machine's and its process is gone) creates the provider by
    a targeted up and imports every role that exists; `pulumi up` finishes."""
    planned = {role.name for role in load_stack_settings(STACK, project.path).plan.roles}
    server = project.server
    _up_killed_when(project, lambda admin: len(_named(admin) & planned) >= 12)
    left = _roles(server) & planned
    assert len(left) >= 12 and left != planned
    assert _locked(project)
    assert _state_roles(project) == set()

    printed = _recover(project)
    assert "is stale (that process is gone)" in printed
    assert "targeted `pulumi up`" in printed
    assert _imported(printed) >= left, sorted(left - _imported(printed))
    assert not _locked(project)

    _converged(project)
    assert _roles(server) & planned == planned
    assert "nothing to recover" in _recover(project)


def test_an_update_killed_midway_loses_no_row_and_recovers_with_unlock(project: Project) -> None:
    """Eight plugins added, killed once some of their roles exist: those
    roles are on the server, not in the state. `recover --unlock` (CI's
    deploy job) removes the lock and imports them; every row stays."""
    server = project.server
    with server.connect() as admin:
        admin.execute("""INSERT INTO public."User" ("email") VALUES ('kept@example.org')""")
    before = _rows(server)
    assert before['public."User"']
    project.edit_catalog(lambda entries: entries.extend(dict(e) for e in EXTRA_PLUGINS))
    _up_killed_when(project, lambda admin: len(_named(admin, "%extra%")) >= 8)
    new = _roles(server, "%extra%")
    assert new and not new & _state_roles(project)

    printed = _recover(project, "--unlock")
    assert "unlock: `pulumi cancel`" in printed
    assert _imported(printed) >= new, sorted(new - _imported(printed))

    _converged(project)
    after = _rows(server)
    assert {table: rows for table, rows in after.items() if table in before} == before


def test_a_removal_killed_midway_is_finished_by_the_next_up(project: Project) -> None:
    """The eight plugins removed again, killed once the first of their roles
    is dropped: the state still holds the dropped roles and what names them.
    `recover` recreates each as an empty placeholder, `pulumi up` drops them
    as planned; the removed plugins' schemas stay, with their rows."""
    server = project.server
    with server.connect() as admin:
        admin.execute("CREATE TABLE plugin_extra0.kept (id int)")
        admin.execute("INSERT INTO plugin_extra0.kept VALUES (1), (2)")
        admin.execute("ALTER TABLE plugin_extra0.kept OWNER TO plugin_extra0_owner")
    before = _rows(server)
    count = len(_roles(server, "%extra%"))
    project.edit_catalog(
        lambda entries: entries.__setitem__(
            slice(None), [e for e in entries if not e["plugin"].startswith("extra")]
        )
    )
    _up_killed_when(project, lambda admin: len(_named(admin, "%extra%")) < count)
    dropped = {name for name in _state_roles(project) if "extra" in name} - _roles(server)
    assert dropped

    printed = _recover(project)
    assert f"placeholders: {len(dropped)} roles" in printed

    project.up()
    project.preview("--expect-no-changes")
    assert not _roles(server, "%extra%")
    # The only drift: the schemas kept on purpose (docs/access.md, removing a plugin).
    verify = project.naapdb("verify", "--stack", STACK, "--format", "json", url=server.url())
    differences = json.loads(verify.stdout)["differences"]
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert {(d["kind"], d["schema"]) for d in differences} == {
        ("extra-schema", extra["schema"]) for extra in EXTRA_PLUGINS
    }
    assert _rows(server) == before
    with psycopg.connect(server.url(), autocommit=True) as admin:
        assert admin.execute("SELECT count(*) FROM plugin_extra0.kept").fetchone() == (2,)

"""The real Pulumi engine for the integration suite: the CLI, language host
and plugins that scripts/build-engine.sh builds from Go modules, and a copy
of the project driven through that CLI on a stack whose server is a
PostgreSQL the suite started (`external`).

A copy has no venv, as a fresh clone has none: its first `pulumi up` (or
`pulumi install`) creates one from requirements.txt through the language
host, exactly as for a user, with pip pointed at a folder of wheels packed
from the test venv (tests/wheelhouse.py) instead of an index."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from naapdb import names
from naapdb.stackfiles import find_project_root
from tests.pgserver import PgServer
from tests.wheelhouse import wheelhouse

ROOT = find_project_root()
STACK = "integration"
PASSPHRASE = "naap-db integration test passphrase"
BUILD_SCRIPT = "scripts/build-engine.sh"
# What `pulumi up` needs of the checkout: the project, the program, what it
# reads, the requirements its venv is made from, and the ops command line.
PROJECT_ENTRIES = (
    "Pulumi.yaml",
    "__main__.py",
    "requirements.txt",
    "components",
    "naapdb",
    "migrations",
    "policy",
    "bin",
)
# A `pulumi up` of ~110 resources takes well under a minute here; a hung
# operation fails the test instead of the CI run.
OPERATION_TIMEOUT = 600


def engine_dir() -> Path:
    return Path(os.environ.get("NAAPDB_ENGINE_DIR", "~/.cache/naap-db/engine")).expanduser()


def missing_engine_reason() -> str | None:
    """Why the engine cannot run here, or None when it is built."""
    if (engine_dir() / "bin" / "pulumi").is_file():
        return None
    if shutil.which("go") is None:
        return (
            f"Go is not installed, so the real engine cannot be built: install Go 1.26+ and run "
            f"`bash {BUILD_SCRIPT}` (bash scripts/test.sh does it where Go exists)"
        )
    return f"the engine is not built in {engine_dir()}: run `bash {BUILD_SCRIPT}`"


def require_engine() -> None:
    """Skip the calling test where the engine is missing, or fail it where
    NAAPDB_REQUIRE_ENGINE says the engine was built for this run."""
    import pytest  # bench/ imports this module too, without pytest

    reason = missing_engine_reason()
    if reason is None:
        return
    if os.environ.get("NAAPDB_REQUIRE_ENGINE"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Project:
    """A copy of the project with its own file backend and stack."""

    path: Path
    server: PgServer
    environment: dict[str, str]
    timeout: float = OPERATION_TIMEOUT
    """Seconds one `pulumi` command may take (bench/engine.py raises it)."""

    def pulumi(
        self, *arguments: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi ARGS --stack integration` in the copy; output captured."""
        command = [
            "pulumi",
            *arguments,
            "--stack",
            STACK,
            "--non-interactive",
            "--color",
            "never",
        ]
        result = subprocess.run(
            command,
            cwd=self.path,
            env=self.environment,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"`pulumi {' '.join(arguments)}` exited {result.returncode}:\n"
                f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def up(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.pulumi("up", "--yes", "--skip-preview", *extra)

    def preview(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.pulumi("preview", *extra, check=check)

    def preview_steps(self, *extra: str) -> list[dict[str, Any]]:
        """The steps `pulumi preview --json` plans: each with `op` and `urn`."""
        result = self.pulumi("preview", "--json", *extra)
        return list(json.loads(result.stdout).get("steps", []))

    def last_update_changes(self) -> dict[str, int]:
        """The last update's resource changes by operation (`same` included)."""
        history = json.loads(self.pulumi("stack", "history", "--json").stdout)
        return {op: int(n) for op, n in (history[0].get("resourceChanges") or {}).items()}

    def outputs(self) -> dict[str, Any]:
        result = self.pulumi("stack", "output", "--json", "--show-secrets")
        return dict(json.loads(result.stdout))

    def connection_urls(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.outputs()["connection_urls"].items()}

    def resource_urns(self) -> list[str]:
        state = json.loads(self.pulumi("stack", "export").stdout)
        return [resource["urn"] for resource in state["deployment"].get("resources", [])]

    def edit_catalog(self, edit: Any) -> None:
        """Rewrites the copy's catalogue with `edit(list_of_entries)`."""
        path = self.path / "Pulumi.yaml"
        project = yaml.safe_load(path.read_text())
        entries = project["config"]["naap-db:plugins"]["value"]
        edit(entries)
        path.write_text(yaml.safe_dump(project, sort_keys=False))

    def naapdb(
        self, *arguments: str, url: str, **variables: str
    ) -> subprocess.CompletedProcess[str]:
        """`python -m naapdb ...` in the copy, DATABASE_URL (and `variables`)
        in the environment."""
        environment = {k: v for k, v in self.environment.items() if not k.startswith("PG")}
        environment["DATABASE_URL"] = url
        environment.update(variables)
        return subprocess.run(
            [str(self.path / "venv" / "bin" / "python"), "-m", "naapdb", *arguments],
            cwd=self.path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def copy_project(destination: Path, source: Path = ROOT) -> Path:
    """The project of the checkout `source` (another revision's, to deploy
    what it deployed) as a fresh clone has it: no venv. Over a copy already
    there, its files are replaced; its venv, stack file and state stay."""
    destination.mkdir(parents=True, exist_ok=True)
    for entry in PROJECT_ENTRIES:
        origin, target = source / entry, destination / entry
        if origin.is_dir():
            kept = target / "venv"
            if kept.exists():
                kept.rename(destination / f".{entry}-venv")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "venv"))
            if (destination / f".{entry}-venv").exists():
                (destination / f".{entry}-venv").rename(kept)
        elif origin.exists():
            shutil.copy2(origin, target)
    return destination


@functools.cache
def _project_wheels() -> Path:
    """The wheelhouse of the project's requirements: the same all session, so
    it is looked up once, not once per project copy."""
    return wheelhouse([ROOT / "requirements.txt", ROOT / "policy" / "requirements.txt"])


def engine_environment(state: Path) -> dict[str, str]:
    """The environment a user has after the build script's one line (the
    engine's CLI first on PATH, its PULUMI_HOME, no plugin download) and the
    README's setup (PULUMI_SKIP_CHECKPOINTS: the state is saved once per
    update, docs/recovery.md), with
    state in a file backend at `state`, and pip installing from the folder
    of wheels (PIP_NO_INDEX, PIP_FIND_LINKS: pip's own environment options)
    into venvs made by this interpreter's Python (PULUMI_PYTHON_CMD), whose
    binary wheels the folder holds."""
    state.mkdir(parents=True, exist_ok=True)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "PG", "DATABASE_URL", "AWS_", "PIP_", "VIRTUAL_ENV"))
    }
    wheels = _project_wheels()
    environment.update(
        PATH=os.pathsep.join([str(engine_dir() / "bin"), environment.get("PATH", "")]),
        PULUMI_HOME=str(engine_dir() / "home"),
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_BACKEND_URL=state.as_uri(),
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_SKIP_CHECKPOINTS="true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
        PULUMI_PYTHON_CMD=str(Path(sys._base_executable)),  # type: ignore[attr-defined]
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(wheels),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return environment


def make_project(
    destination: Path, server: PgServer, venv: Path | None = None, source: Path = ROOT
) -> Project:
    """The project as a fresh clone has it (no venv: the first `pulumi up`
    creates it; `venv` links one in instead, for the benchmarks), state in a
    file backend under `destination`, and an `integration` stack on `server`;
    `source`: the checkout to copy."""
    path = copy_project(destination / "project", source)
    if venv is not None:
        (path / "venv").symlink_to(venv)
        (path / "policy" / "venv").symlink_to(venv)
    environment = engine_environment(destination / "state")
    environment["PULUMI_CONFIG_PASSPHRASE"] = PASSPHRASE
    project = Project(path, server, environment)
    project.pulumi("stack", "init", "--secrets-provider", "passphrase")
    project.pulumi(
        "config",
        "set-all",
        "--path",
        "--plaintext",
        "naap-db:server.kind=external",
        "--plaintext",
        f"naap-db:server.host={server.host}",
        "--plaintext",
        f"naap-db:server.port={server.port}",
        "--plaintext",
        f"naap-db:server.database={names.DATABASE}",
        "--plaintext",
        "naap-db:server.adminUser=postgres",
        "--plaintext",
        "naap-db:server.sslmode=disable",
        "--plaintext",
        "naap-db:credentials.rotation=single",
        "--plaintext",
        "naap-db:push.mode=sql",
        "--plaintext",
        "naap-db:push.source=migrations",
        # The suite's servers have max_connections 200 (tests/pgserver.py).
        "--plaintext",
        "naap-db:limits.maxConnections=200",
    )
    # On stdin, not argv, where any process on the machine could read it.
    project.pulumi("config", "set", "--secret", "naap-db:adminPassword", stdin=server.password)
    return project

"""The real Pulumi engine for the integration suite: the CLI, language host
and plugins that scripts/build-engine.sh builds from Go modules, and a copy
of the project driven through that CLI on a stack whose server is a
PostgreSQL the suite started (`external`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from naapdb import names
from naapdb.stackfiles import find_project_root
from tests.pgserver import PgServer

ROOT = find_project_root()
STACK = "integration"
PASSPHRASE = "naap-db integration test passphrase"
BUILD_SCRIPT = "scripts/build-engine.sh"
# What `pulumi up` needs of the checkout: the project, the program and what it reads.
PROJECT_ENTRIES = ("Pulumi.yaml", "__main__.py", "components", "naapdb", "migrations", "policy")
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

    def naapdb(self, *arguments: str, url: str) -> subprocess.CompletedProcess[str]:
        """`python -m naapdb ...` in the copy, DATABASE_URL in the environment."""
        environment = {k: v for k, v in self.environment.items() if not k.startswith("PG")}
        environment["DATABASE_URL"] = url
        return subprocess.run(
            [str(self.path / "venv" / "bin" / "python"), "-m", "naapdb", *arguments],
            cwd=self.path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def make_project(destination: Path, server: PgServer, venv: Path) -> Project:
    """The project as a user has it (its venv linked in, as `pulumi up`
    would have created it), state in a file backend under `destination`,
    and an `integration` stack on `server`."""
    path = destination / "project"
    path.mkdir(parents=True)
    for entry in PROJECT_ENTRIES:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(
                source,
                path / entry,
                ignore=shutil.ignore_patterns("__pycache__", "venv"),
            )
        else:
            shutil.copy2(source, path / entry)
    (path / "venv").symlink_to(venv)
    (path / "policy" / "venv").symlink_to(venv)
    state = destination / "state"
    state.mkdir()
    bin_dir = engine_dir() / "bin"
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PULUMI_", "PG", "DATABASE_URL", "AWS_"))
    }
    environment.update(
        PATH=os.pathsep.join([str(bin_dir), environment.get("PATH", "")]),
        PULUMI_HOME=str(engine_dir() / "home"),
        PULUMI_BACKEND_URL=state.as_uri(),
        PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK="true",
    )
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
    )
    # On stdin, not argv, where any process on the machine could read it.
    project.pulumi("config", "set", "--secret", "naap-db:adminPassword", stdin=server.password)
    return project

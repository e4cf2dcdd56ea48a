"""What this checkout pins, and that the pins agree: every Pulumi SDK in the
requirement files exactly (each names, in its pulumi-plugin.json, the
resource plugin and version `pulumi up` downloads and records in the
state), the plugins the README says a user's CLI fetches for dev and prod,
and the CLI every `pulumi/actions` step of CI installs, which must be the
one the suite builds and tests (engine/go.mod's pkg/v3)."""

from __future__ import annotations

import importlib.metadata
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import harness
from tests.wheelhouse import requirements_of

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENT_FILES = [
    ROOT / "requirements.txt",
    ROOT / "policy" / "requirements.txt",
    ROOT / "requirements-test.txt",
]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PLUGINS_MARKER = "<!-- plugins -->"


def pulumi_requirements() -> list[Requirement]:
    return [r for r in requirements_of(REQUIREMENT_FILES) if r.name.lower().startswith("pulumi")]


def sdk_plugins() -> dict[str, str]:
    """name -> version of the resource plugin each installed Pulumi SDK of
    requirements.txt names in its pulumi-plugin.json (Pulumi's host reads
    the same files: GetRequiredPackages)."""
    found: dict[str, str] = {}
    for requirement in requirements_of([ROOT / "requirements.txt"]):
        module = canonicalize_name(requirement.name).replace("-", "_")
        if not module.startswith("pulumi_"):
            continue
        manifest = json.loads(resources.files(module).joinpath("pulumi-plugin.json").read_text())
        if manifest.get("resource"):
            found[manifest["name"]] = manifest["version"]
    return found


def test_every_pulumi_sdk_is_pinned_exactly() -> None:
    """Trap: pulumi-docker and pulumi-aws were ranges, so two machines could
    record different provider versions in the state."""
    requirements = pulumi_requirements()
    assert {canonicalize_name(r.name) for r in requirements} >= {
        "pulumi",
        "pulumi-aws",
        "pulumi-command",
        "pulumi-docker",
        "pulumi-postgresql",
        "pulumi-random",
        "pulumi-policy",
    }
    loose = [str(r) for r in requirements if [s.operator for s in r.specifier] != ["=="]]
    assert loose == []


def test_the_venv_holds_the_pinned_versions() -> None:
    for requirement in pulumi_requirements():
        (pin,) = requirement.specifier
        assert importlib.metadata.version(requirement.name) == pin.version, requirement


def test_one_version_of_each_sdk_across_the_requirement_files() -> None:
    pins: dict[str, set[str]] = {}
    for requirement in pulumi_requirements():
        pins.setdefault(canonicalize_name(requirement.name), set()).add(str(requirement.specifier))
    assert {name: versions for name, versions in pins.items() if len(versions) > 1} == {}


def test_the_plugins_are_the_sdks_pulumi_plugin_json() -> None:
    assert sdk_plugins() == {
        "aws": "7.51.1",
        "command": "1.2.1",
        "docker": "4.11.2",
        "postgresql": "3.18.2",
        "random": "4.21.4",
    }


def readme_plugin_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    assert PLUGINS_MARKER in text, f"README lacks the {PLUGINS_MARKER} table"
    rows = []
    for line in text.split(PLUGINS_MARKER, 1)[1].lstrip("\n").splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return {row[0].strip("`"): row for row in rows}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_readme_names_the_plugins_each_stack_starts_at_their_versions(
    run_stack: Any, stack: str
) -> None:
    """README: which plugins a user's CLI downloads, at which versions, and
    which of them each stack's program starts (from what it registers)."""
    rows = readme_plugin_rows()
    plugins = sdk_plugins()
    assert {name: row[1].strip("`") for name, row in rows.items()} == plugins
    run: harness.Run = run_stack(stack)
    started = {r.type.split(":")[0] for r in run.resources if r.custom} - {"pulumi"}
    column = 2 if stack == "dev" else 3
    assert {name for name, row in rows.items() if row[column] == "yes"} == started


def go_mod_cli_version() -> str:
    text = (ROOT / "engine" / "go.mod").read_text()
    match = re.search(r"^\s*github\.com/pulumi/pulumi/pkg/v3 v(\d+\.\d+\.\d+)$", text, re.M)
    assert match, "engine/go.mod requires no github.com/pulumi/pulumi/pkg/v3"
    return match.group(1)


def pulumi_action_steps() -> list[tuple[str, str, dict[str, Any]]]:
    steps = []
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        for job_id, job in workflow.get("jobs", {}).items():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("pulumi/actions@"):
                    steps.append((path.name, job_id, step))
    return steps


def test_every_pulumi_action_installs_the_cli_the_suite_tested() -> None:
    """Trap: without `pulumi-version`, CI ran whatever CLI was newest."""
    steps = pulumi_action_steps()
    assert len(steps) >= 5
    wanted = go_mod_cli_version()
    versions = {
        (name, job): str(step.get("with", {}).get("pulumi-version")) for name, job, step in steps
    }
    assert versions == dict.fromkeys(versions, wanted)


def test_the_sdk_is_not_newer_than_the_cli() -> None:
    """A CLI older than the SDK may not speak its protocol."""
    sdk = tuple(int(part) for part in importlib.metadata.version("pulumi").split("."))
    cli = tuple(int(part) for part in go_mod_cli_version().split("."))
    assert sdk <= cli

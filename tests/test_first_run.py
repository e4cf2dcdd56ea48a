"""A newcomer's first commands in a fresh clone (`cli` marker: the real
engine): the README's `pulumi stack init dev` leaves the checkout as it
was, and `pulumi install` has the language host create `./venv` from
requirements.txt, after which `bin/naapdb` runs from it. The same clone
then shows that a venv made by a Python older than 3.11 stops the ops
tools and the program in one line naming the version they need."""

from __future__ import annotations

import glob
import importlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.engine import OPERATION_TIMEOUT, engine_environment, require_engine
from tests.test_readme_commands import README, commands, fresh_clone

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    require_engine()
    scratch = tmp_path_factory.mktemp("first-run")
    environment = engine_environment(scratch / "state")
    environment["HOME"] = str(scratch)
    return fresh_clone(scratch / "naap-db"), environment


def status(path: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=path, capture_output=True, text=True, check=True
    ).stdout


def run(command: str, path: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail\n{command}"],
        cwd=path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=OPERATION_TIMEOUT,
        check=False,
    )


def test_the_readmes_stack_init_dev_leaves_the_checkout_clean(
    clone: tuple[Path, dict[str, str]],
) -> None:
    """Trap: with the passphrase provider, `pulumi stack init dev` wrote an
    `encryptionsalt` into the committed Pulumi.dev.yaml (reformatting it),
    so every newcomer's checkout turned dirty and their salts conflicted."""
    path, environment = clone
    readme = commands(README.read_text())
    passphrase = next(c.code for c in readme if "PULUMI_CONFIG_PASSPHRASE" in c.code)
    init = next(c.code for c in readme if "pulumi stack init dev" in c.code)
    before = status(path)
    result = run(f"{passphrase}\n{init}", path, environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert status(path) == before
    # The committed salt is the README's passphrase's: its secrets round-trip.
    secret = run(
        f"{passphrase}\npulumi config set --secret probe s3cret --stack dev\n"
        "pulumi config get probe --stack dev",
        path,
        environment,
    )
    assert secret.returncode == 0 and secret.stdout.strip() == "s3cret", secret.stderr
    subprocess.run(["git", "checkout", "--", "Pulumi.dev.yaml"], cwd=path, check=True)


def test_pulumi_install_creates_the_venv_the_ops_tools_run_from(
    clone: tuple[Path, dict[str, str]],
) -> None:
    path, environment = clone
    before = status(path)
    # --no-plugins: the engine has no docker or aws plugin, and this machine
    # cannot download them (a user's `pulumi install` does, once).
    result = run("pulumi install --no-plugins", path, environment)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Creating virtual environment" in result.stdout + result.stderr
    assert (path / "venv" / "pyvenv.cfg").is_file()
    plan = run("bin/naapdb plan --stack dev --format json", path, environment)
    assert plan.returncode == 0 and plan.stdout.startswith("{"), plan.stderr
    assert status(path) == before


def older_python() -> str | None:
    """A working Python 3.10 or 3.9 on this machine (pyenv's, or on PATH), or None."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0]*/bin/python")))
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python")))
    candidates += [found for name in ("python3.10", "python3.9") if (found := shutil.which(name))]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; sys.exit(sys.version_info >= (3, 11))"],
            capture_output=True,
            check=False,
        )
        if probe.returncode == 0:
            return candidate
    return None


def test_a_venv_of_an_older_python_stops_in_one_line(
    clone: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """pulumi accepts Python 3.10, so a venv made with it installs cleanly;
    naap-db needs 3.11 (`StrEnum`). `bin/naapdb` and the program stop before
    any import that needs it, with one line naming the version."""
    python = older_python()
    if python is None:
        pytest.skip("no Python older than 3.11 on this machine (python3.10, or pyenv's)")
    path, environment = clone
    old = tmp_path / "naap-db"
    shutil.copytree(path, old, ignore=shutil.ignore_patterns("venv", ".git"))
    subprocess.run([python, "-m", "venv", str(old / "venv")], check=True)
    for command in ("bin/naapdb plan --stack dev", "venv/bin/python __main__.py"):
        result = run(command, old, environment)
        assert result.returncode == 2, result.stderr
        assert result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: naap-db needs Python 3.11 or newer, but ")
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("plugin", "token", "an_input"),
    [
        ("postgresql", "postgresql:index/role:Role", "connectionLimit"),
        ("random", "random:index/randomPassword:RandomPassword", "length"),
    ],
)
def test_the_bridged_plugins_serve_the_schema_tfgen_generated(
    clone: tuple[Path, dict[str, str]], plugin: str, token: str, an_input: str
) -> None:
    """Each bridged plugin embeds the package schema its tfgen program wrote
    at build time, under the SDK's version and tokens."""
    path, environment = clone
    result = run(f"pulumi package get-schema {plugin}", path, environment)
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    module = importlib.import_module(f"pulumi_{plugin}")
    manifest = json.loads((Path(module.__file__).parent / "pulumi-plugin.json").read_text())
    assert (schema["name"], schema["version"]) == (plugin, manifest["version"])
    assert an_input in schema["resources"][token]["inputProperties"]

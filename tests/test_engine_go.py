"""The engine's own Go tests (`cli` marker: they need Go): the language
host's Cancel (SIGINT, then a kill after the grace period), its PEP 440 to
plugin-version translation and its package-to-plugin rule, and the command
stand-in's IDs (name and 8 hex digits, as pulumi-command makes them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.cli

ENGINE = Path(__file__).resolve().parent.parent / "engine"
PACKAGES = [
    (ENGINE, "./cmd/pulumi-language-python/"),
    (ENGINE / "providers", "./command/..."),
]


@pytest.mark.parametrize(("module", "package"), PACKAGES, ids=[p for _, p in PACKAGES])
def test_go_tests_pass(module: Path, package: str) -> None:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").is_file() else None
    )
    if go is None:
        message = "Go is not installed: the engine's Go tests need Go 1.26+"
        if os.environ.get("NAAPDB_REQUIRE_ENGINE"):
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [go, "test", "-count=1", package], cwd=module, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]

"""scripts/lint-workflows.sh is a real check: actionlint (with shellcheck)
fails on a workflow with a wrong context or a broken `run:` script, and
passes on the committed ones. Skips, with the reason, where Go is absent
(the script then skips too)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT

SCRIPT = ROOT / "scripts" / "lint-workflows.sh"
BROKEN_STEP = """
      - name: broken
        run: |
          if [ $STACK = dev ]; then echo "${{ matrix.nope }}"; fi
"""

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="no Go: actionlint is not built")


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_committed_workflows_pass() -> None:
    done = lint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "found no problem" in done.stdout


def test_a_wrong_context_and_an_unquoted_variable_fail(tmp_path: Path) -> None:
    workflow = (ROOT / ".github" / "workflows" / "access-diff.yml").read_text()
    anchor = "      - name: naapdb diff (job summary)\n"
    assert anchor in workflow
    broken = tmp_path / "broken.yml"
    broken.write_text(workflow.replace(anchor, BROKEN_STEP.lstrip("\n") + anchor))
    done = lint(broken)
    assert done.returncode != 0
    assert 'property "nope" is not defined' in done.stdout
    assert "SC2086" in done.stdout  # shellcheck: $STACK unquoted

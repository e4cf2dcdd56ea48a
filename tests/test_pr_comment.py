"""scripts/pr-comment.py's bad input: one line, exit 2, the token never shown.
(Posting and editing: the job replay, tests/test_workflow_replay.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT

SCRIPT = ROOT / "scripts" / "pr-comment.py"
TOKEN = "ghs_never_printed"


def comment(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--key", "access-diff-dev", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_environment_is_one_line(tmp_path: Path) -> None:
    body = tmp_path / "body.md"
    body.write_text("x\n")
    done = comment({"GITHUB_TOKEN": TOKEN}, "--body-file", str(body))
    assert done.returncode == 2
    assert done.stderr == "error: GITHUB_REPOSITORY, PR_NUMBER: not set in the environment\n"


def test_an_unreachable_api_is_one_line_without_the_token(tmp_path: Path) -> None:
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": "acme/naap-db",
        "PR_NUMBER": "7",
        "GITHUB_API_URL": "http://127.0.0.1:9",
    }
    done = comment(env, "--body-file", str(tmp_path / "absent.md"))
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert done.stderr.startswith(f"error: {tmp_path / 'absent.md'}: ")
    body = tmp_path / "body.md"
    body.write_text("x\n")
    done = comment(env, "--body-file", str(body))
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert done.stderr.startswith("error: GET http://127.0.0.1:9/repos/acme/naap-db/issues/7/")
    assert TOKEN not in done.stdout + done.stderr


def test_a_body_over_githubs_limit_is_cut_at_a_line_and_says_so() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("pr_comment", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    short = "| `naap_a` | `public` | · | ro |\n" * 10
    assert script.shortened(short) == short
    long = "| `naap_a` | `public` | · | ro | widens |\n" * 3000
    cut = script.shortened(long)
    assert len(cut) < 65_536
    kept, note = cut.rsplit("\n\n", 1)
    assert long.startswith(kept + "\n")
    assert note.startswith("*Cut at ") and "job summary" in note

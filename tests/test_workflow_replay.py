"""The pull-request workflows' jobs, replayed: their `run:` steps exactly as
written, in order, in a fresh workspace, under bash as GitHub runs them; the
`uses:` steps replaced by what they do locally (checkout: a shallow clone or
fetch of a local "origin" holding `main` and the pull request's refs, at the
step's `ref`, `path` and `fetch-depth`; setup-python: this interpreter as
`python`), GitHub's API by a local stand-in (the access-diff comment is
really posted, then edited), up to the first step that needs a cloud account
(the AWS credentials of the preview job).

`access-diff.yml` runs the base branch's code on the pull request's files
read as data (`pull_request_target`); the hostile pull request below
rewrites the diff's renderer and the comment script, and the comment still
tells the truth."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
REPOSITORY = "acme/naap-db"
PR_NUMBER = "7"
BOT = {"login": "github-actions[bot]", "type": "Bot"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# The jobs' `if:`s, as they evaluate for a pull request from a branch of the repository.
CONDITIONS = {"github.event.pull_request.head.repo.full_name == github.repository": True}


class FakeGitHub(ThreadingHTTPServer):
    """Issue comments of one pull request: list, create, edit; a comment made
    with the job's token is the bot's, as on GitHub."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.comments: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.tokens: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length", 0))
        return dict(json.loads(self.rfile.read(length)))

    def _record(self) -> str:
        self.server.tokens.add(self.headers.get("Authorization", ""))
        path = self.path.split("?")[0]
        self.server.calls.append(f"{self.command} {path}")
        return path

    def do_GET(self) -> None:
        path = self._record()
        if path == f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments":
            self._reply(200, self.server.comments)
        else:
            self._reply(404, {"message": "Not Found"})

    def do_POST(self) -> None:
        path = self._record()
        if path != f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments":
            self._reply(404, {"message": "Not Found"})
            return
        comment = {
            "id": 1000 + len(self.server.comments),
            "body": self._body()["body"],
            "user": BOT,
        }
        self.server.comments.append(comment)
        self._reply(201, comment)

    def do_PATCH(self) -> None:
        path = self._record()
        for comment in self.server.comments:
            if path == f"/repos/{REPOSITORY}/issues/comments/{comment['id']}":
                comment["body"] = self._body()["body"]
                self._reply(200, comment)
                return
        self._reply(404, {"message": "Not Found"})


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """The repository on GitHub: this checkout's commit as `main`."""
    origin = tmp_path / "origin"
    git(tmp_path, "clone", "-q", "--no-hardlinks", str(ROOT), str(origin))
    git(origin, "update-ref", "refs/heads/main", "HEAD")
    git(origin, "checkout", "-q", "--detach")
    return origin


def add_plugin(workspace: Path, plugin: str, reads: list[str]) -> None:
    text = (workspace / "Pulumi.yaml").read_text()
    entry = (
        f"      - plugin: {plugin}\n        schema: plugin_{plugin}\n"
        f"        reads: [{', '.join(reads)}]\n"
    )
    (workspace / "Pulumi.yaml").write_text(text + entry)


def push_to_pull_request(origin: Path, scratch: Path, change: Callable[[Path], None]) -> None:
    """A commit on the pull request's branch (`pr`, from main the first time)
    and GitHub's `refs/pull/7/head` and `/merge` (its merge into main)."""
    if not scratch.exists():
        git(scratch.parent, "clone", "-q", str(origin), str(scratch))
        git(scratch, "checkout", "-q", "-b", "pr", "origin/main")
    change(scratch)
    git(scratch, "add", "-A")
    git(scratch, "commit", "-q", "-m", "the pull request")
    head = git(scratch, "rev-parse", "HEAD").strip()
    git(scratch, "checkout", "-q", "--detach", "origin/main")
    git(scratch, "merge", "-q", "--no-ff", "-m", "Merge pr into main", head)
    git(scratch, "push", "-q", "-f", "origin", f"{head}:refs/pull/{PR_NUMBER}/head")
    git(scratch, "push", "-q", "-f", "origin", f"HEAD:refs/pull/{PR_NUMBER}/merge")
    git(scratch, "checkout", "-q", "pr")


def checkout(origin: Path, workspace: Path, options: dict[str, Any]) -> None:
    """actions/checkout@v4: `ref` (default: main, the base branch) at
    `fetch-depth` (default 1) into `path` (default: the workspace)."""
    target = workspace / str(options.get("path", "."))
    ref = options.get("ref")
    depth = str(options.get("fetch-depth", 1))
    if ref is None:
        git(
            workspace,
            "clone",
            "-q",
            f"--depth={depth}",
            "--branch",
            "main",
            origin.as_uri(),
            str(target),
        )
        return
    target.mkdir(parents=True, exist_ok=True)
    git(target, "init", "-q")
    git(target, "fetch", "-q", f"--depth={depth}", origin.as_uri(), str(ref))
    git(target, "checkout", "-q", "--detach", "FETCH_HEAD")


def setup_python(tools: Path) -> None:
    """actions/setup-python@v5: a `python` on PATH (this interpreter)."""
    tools.mkdir(exist_ok=True)
    shim = tools / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)


def substitute(value: str, context: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        assert expression in context, f"the replay does not know ${{{{ {expression} }}}}"
        return context[expression]

    return EXPRESSION.sub(one, value)


# Where a cloud account begins: the replay stops at the first of these.
CLOUD_ACTIONS = frozenset({"aws-actions/configure-aws-credentials", "pulumi/actions"})


def replay(
    workflow: str,
    job_name: str,
    workspace: Path,
    origin: Path,
    stack: str,
    github: FakeGitHub,
    runner_temp: Path,
) -> dict[str, str]:
    """Run the job's steps up to the first that needs a cloud account;
    returns the job summary, the step log and the step it stopped at."""
    job = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"][job_name]
    assert stack in job["strategy"]["matrix"]["stack"]
    context = {
        "matrix.stack": stack,
        "github.base_ref": "main",
        "github.token": "ghs_replay_token",
        "github.event.pull_request.number": PR_NUMBER,
        # No repository secrets here, as for a pull request from a fork.
        "secrets.PULUMI_BACKEND_URL": "",
        "matrix.stack == 'dev' && secrets.PULUMI_CONFIG_PASSPHRASE_DEV || ''": "",
    }
    tools = runner_temp / "tools"
    summary = runner_temp / f"summary-{stack}.md"
    summary.write_text("")
    workspace.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "NAAPDB_"))},
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(runner_temp / "output"),
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": github.url,
        "CI": "true",
    }
    env.update({k: substitute(str(v), context) for k, v in (job.get("env") or {}).items()})
    log = []
    stopped_at = ""
    for step in job["steps"]:
        condition = step.get("if")
        if condition is not None and not CONDITIONS[condition]:
            continue
        action = str(step.get("uses", "")).split("@")[0]
        if action == "actions/checkout":
            options = {k: substitute(str(v), context) for k, v in (step.get("with") or {}).items()}
            checkout(origin, workspace, options)
            continue
        if action == "actions/setup-python":
            setup_python(tools)
            continue
        if action in CLOUD_ACTIONS:
            stopped_at = str(step.get("name", action))
            break
        assert not action, f"no local equivalent for {action}"
        assert "${{" not in step["run"], "run: scripts take values through env:"
        step_env = {
            **env,
            **{k: substitute(str(v), context) for k, v in (step.get("env") or {}).items()},
        }
        script = runner_temp / "step.sh"
        script.write_text(step["run"])
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stderr[-2000:]}"
        log.append(f"{step.get('name')}: {done.stdout.strip()}")
    return {"summary": summary.read_text(), "log": "\n".join(log), "stopped_at": stopped_at}


def access_diff(
    origin: Path, stack: str, github: FakeGitHub, tmp_path: Path, run: str
) -> dict[str, str]:
    """One run of access-diff.yml's job, on a fresh runner."""
    return replay("access-diff.yml", "access-diff", tmp_path / run, origin, stack, github, tmp_path)


def test_the_access_diff_job_comments_once_per_stack_and_edits_on_push(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    scratch = tmp_path / "pr"
    push_to_pull_request(
        origin, scratch, lambda tree: add_plugin(tree, "invoices", ["public", "plugin_wallet"])
    )
    dev = access_diff(origin, "dev", github, tmp_path, "run-1-dev")
    assert "### Access diff: stack `dev`, `main` → pull/7" in dev["summary"]
    assert "| `naap_invoices` | `plugin_wallet` | · | ro | **WIDENS" in dev["summary"]
    assert [c["body"].splitlines()[0] for c in github.comments] == [
        "<!-- naap-db:access-diff-dev -->"
    ]
    assert github.comments[0]["body"].endswith(dev["summary"])
    assert github.tokens == {"Bearer ghs_replay_token"}
    assert "posted the access-diff-dev comment on pull request #7" in dev["log"]
    # Neither checkout kept a credential in its git configuration.
    for checkout_dir in ("base", "pull-request"):
        config = (tmp_path / "run-1-dev" / checkout_dir / ".git" / "config").read_text()
        assert "extraheader" not in config.lower() and "ghs_" not in config

    prod = access_diff(origin, "prod", github, tmp_path, "run-1-prod")
    assert "stack `prod`" in prod["summary"] and len(github.comments) == 2

    # A second push to the pull request: the dev comment is edited, not added.
    push_to_pull_request(origin, scratch, lambda tree: add_plugin(tree, "ledger", ["public"]))
    again = access_diff(origin, "dev", github, tmp_path, "run-2-dev")
    assert len(github.comments) == 2
    assert "`naap_ledger`" in github.comments[0]["body"]
    assert "edited the access-diff-dev comment" in again["log"]
    assert github.calls.count(f"POST /repos/{REPOSITORY}/issues/{PR_NUMBER}/comments") == 2
    assert "PATCH /repos/acme/naap-db/issues/comments/1000" in github.calls


def hostile(tree: Path) -> None:
    """A pull request that widens access and rewrites what would report it:
    the diff's renderer says nothing changed, the comment script posts a
    lie and prints the token, and its workflow copy would do the same."""
    add_plugin(tree, "invoices", ["public", "plugin_wallet"])
    renderer = tree / "naapdb" / "accessdiff.py"
    renderer.write_text(
        renderer.read_text()
        + "\n\ndef diff_to_markdown(result):\n    return 'No access changes.\\n'\n"
    )
    (tree / "scripts" / "pr-comment.py").write_text(
        "import os\nprint('token', os.environ.get('GITHUB_TOKEN'))\n"
    )


def test_a_pull_request_cannot_change_what_the_access_diff_says(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """Issue 21, gap 6: the comment is computed by the base branch's code;
    the pull request's own code never runs and never sees the token."""
    push_to_pull_request(origin, tmp_path / "pr", hostile)
    run = access_diff(origin, "dev", github, tmp_path, "run")
    assert "No access changes" not in run["summary"]
    assert "| `naap_invoices` | `plugin_wallet` | · | ro | **WIDENS" in run["summary"]
    (comment,) = github.comments
    assert "**WIDENS" in comment["body"] and "ghs_replay_token" not in run["log"]


def test_a_marker_comment_by_someone_else_is_never_edited(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """Issue 21, gap 6: anyone may write a comment starting with the marker;
    the script edits only the bot's own."""
    forged = {
        "id": 999,
        "body": "<!-- naap-db:access-diff-dev -->\nNo access changes.",
        "user": {"login": "mallory", "type": "User"},
    }
    github.comments.append(dict(forged))
    push_to_pull_request(
        origin, tmp_path / "pr", lambda tree: add_plugin(tree, "invoices", ["public"])
    )
    run = access_diff(origin, "dev", github, tmp_path, "run")
    assert github.comments[0] == forged  # untouched
    assert "posted the access-diff-dev comment" in run["log"]
    assert github.comments[1]["user"] == BOT and "`naap_invoices`" in github.comments[1]["body"]
    assert "PATCH /repos/acme/naap-db/issues/comments/999" not in github.calls


# What `pulumi preview --stack prod` runs next, short of the cloud: the
# program under the mocks harness, with the job's own virtualenv.
PROGRAM = """
import json, sys
sys.path.insert(0, ".")
from tests import harness
run = harness.run_program("prod")
print(json.dumps(run.one("aws:lambda/function:Function").inputs["code"]["path"]))
"""


def test_the_prod_preview_job_runs_up_to_the_cloud_with_no_build_step(
    tmp_path: Path, origin: Path, github: FakeGitHub
) -> None:
    """The pull request's preview job from a fresh checkout: no bundle to
    fetch or pin, no wheel cache, the Lambda built from the lock."""
    workspace = tmp_path / "work"
    prod = replay("pull-request.yml", "preview", workspace, origin, "prod", github, tmp_path)
    assert prod["stopped_at"] == "AWS credentials (preview role, OIDC)"
    assert (workspace / "venv" / "bin" / "python").is_file()
    assert (workspace / "policy" / "venv" / "bin" / "python").is_file()
    assert not (workspace / "build").exists()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NAAPDB_ROTATION_LAMBDA_ZIP", "NAAPDB_LAMBDA_WHEELS")
    }
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["PIP_CACHE_DIR"] = env.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    done = subprocess.run(
        [str(workspace / "venv" / "bin" / "python"), "-c", PROGRAM],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == str(
        workspace / "build" / "rotation-lambda.zip"
    )

"""`python -m naapdb diff`: the access plan at a git revision against the
working tree's, in a real git repository the test makes from the committed
stack files (and from catalogues of 1, 8 and 100 plugins)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb.__main__ import main
from tests.harness import ROOT

STACK_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose one commit (branch `main`) holds the committed stack files."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in STACK_FILES:
        shutil.copy(ROOT / name, repo / name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def catalogue(repo: Path) -> list[dict[str, Any]]:
    doc = yaml.safe_load((repo / "Pulumi.yaml").read_text())
    return list(doc["config"]["naap-db:plugins"]["value"])


def set_catalogue(repo: Path, plugins: list[dict[str, Any]]) -> None:
    doc = yaml.safe_load((repo / "Pulumi.yaml").read_text())
    doc["config"]["naap-db:plugins"]["value"] = plugins
    (repo / "Pulumi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def synthetic(plugins: int) -> list[dict[str, Any]]:
    """`base` owning `public`, then plugins p1.. reading it (bench/run.py's shape)."""
    return [{"plugin": "base", "schema": "public"}] + [
        {"plugin": f"p{i}", "schema": f"plugin_p{i}", "reads": ["public"]}
        for i in range(1, plugins)
    ]


def run_diff(repo: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["diff", "--project", str(repo), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_change_is_one_line(repo: Path, stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_diff(repo, capsys, "--stack", stack, "--base", "main")
    assert (code, err) == (0, "")
    assert out == f"no access change in stack {stack} between main and the working tree\n"
    code, out, _ = run_diff(repo, capsys, "--stack", stack, "--base", "main", "--format", "json")
    data = json.loads(out)
    assert data["changed"] is False and data["rights"] == [] and data["flagged"] == 0


def test_a_new_plugin_reading_public_is_flagged_but_its_own_schema_is_not(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_catalogue(
        repo,
        [
            *catalogue(repo),
            {"plugin": "invoices", "schema": "plugin_invoices", "reads": ["public"]},
        ],
    )
    code, out, _ = run_diff(repo, capsys, "--stack", "dev", "--base", "main", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["schemas"] == {"added": ["plugin_invoices"], "removed": []}
    assert data["logins"] == {"added": ["naap_invoices", "plugin_invoices_migrator"], "removed": []}
    rights = {
        (r["login"], r["schema"]): (r["before"], r["after"], r["flagged"]) for r in data["rights"]
    }
    assert rights == {
        ("plugin_invoices_migrator", "plugin_invoices"): ("none", "own", False),
        ("naap_invoices", "public"): ("none", "ro", True),
        # its migrations may reference what it reads: flagged as well
        ("plugin_invoices_migrator", "public"): ("none", "ro", True),
        ("naap_invoices", "plugin_invoices"): ("none", "rw", False),
        ("naap_app", "plugin_invoices"): ("none", "rw", False),
        ("naap_readonly", "plugin_invoices"): ("none", "ro", False),
    }
    gained = {(m["member"], m["group"]) for m in data["memberships"]["gained"]}
    assert ("naap_invoices", "public_ro") in gained and ("naap_app", "plugin_invoices_rw") in gained
    assert data["memberships"]["lost"] == []
    code, out, _ = run_diff(repo, capsys, "--stack", "dev", "--base", "main", "--fail-on-widening")
    assert code == 1
    assert out.splitlines()[-1] == (
        "2 changes widen access beyond a login's own plugin's schema: naap_invoices ro on "
        "public, plugin_invoices_migrator ro on public"
    )


def test_prod_lists_the_alternating_logins_memberships(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = [p for p in catalogue(repo) if p["plugin"] != "wallet"]
    set_catalogue(repo, plugins)
    code, out, _ = run_diff(repo, capsys, "--stack", "prod", "--base", "main")
    assert code == 0
    assert "schemas removed (schema and data kept): plugin_wallet" in out
    assert "logins removed: naap_wallet" in out
    assert "  naap_wallet_a -> naap_wallet" in out
    assert re.search(r"^ +naap_wallet +plugin_wallet +rw -> none +narrows$", out, re.M)
    code, _, _ = run_diff(repo, capsys, "--stack", "prod", "--base", "main", "--fail-on-widening")
    assert code == 0  # only narrowing


def test_a_read_of_another_plugins_schema_widens(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = catalogue(repo)
    for plugin in plugins:
        if plugin["plugin"] == "dashboard":
            plugin["reads"] = ["public", "plugin_wallet"]
    set_catalogue(repo, plugins)
    code, out, _ = run_diff(
        repo,
        capsys,
        "--stack",
        "dev",
        "--base",
        "main",
        "--format",
        "markdown",
        "--fail-on-widening",
    )
    assert code == 1
    assert out.startswith("### Access diff: stack `dev`, `main` → the working tree\n")
    assert (
        "| `naap_dashboard` | `plugin_wallet` | · | ro | **WIDENS: not its own plugin's schema** |"
        in out
    )
    assert "- gained: `naap_dashboard` → `plugin_wallet_ro`" in out
    assert "logins added" not in out


def roomy_limits(repo: Path) -> None:
    """A ceiling 100 plugins fit (issue 14's budget stops any catalogue that
    does not fit its server, at either side of a diff)."""
    path = repo / "Pulumi.dev.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["naap-db:limits"]["plugins"]["connections"] = 1
    doc["config"]["naap-db:limits"]["maxConnections"] = 1000
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.parametrize("size", [1, 8, 100])
def test_catalogues_of_1_8_and_100_plugins(
    repo: Path, size: int, capsys: pytest.CaptureFixture[str]
) -> None:
    roomy_limits(repo)
    set_catalogue(repo, synthetic(size))
    git(repo, "commit", "-q", "-am", f"{size} plugins")
    code, out, _ = run_diff(repo, capsys, "--stack", "dev", "--base", "HEAD")
    assert (code, out) == (0, "no access change in stack dev between HEAD and the working tree\n")
    grown = [*synthetic(size), {"plugin": "extra", "schema": "plugin_extra"}]
    set_catalogue(repo, grown)
    code, out, _ = run_diff(repo, capsys, "--stack", "dev", "--base", "HEAD", "--format", "json")
    data = json.loads(out)
    assert data["schemas"]["added"] == ["plugin_extra"]
    # its push login owns it, extra rw, app rw, readonly ro
    assert len(data["rights"]) == 4
    assert data["flagged"] == 0
    set_catalogue(repo, [synthetic(size)[0]])
    code, out, _ = run_diff(repo, capsys, "--stack", "dev", "--base", "HEAD", "--format", "json")
    data = json.loads(out)
    assert len(data["schemas"]["removed"]) == size - 1
    assert all(not r["widens"] for r in data["rights"])


def test_a_bad_ref_is_one_line_exit_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_diff(repo, capsys, "--stack", "dev", "--base", "no-such-branch")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("error: --base no-such-branch: is not a commit in ")
    code, _, err = run_diff(repo, capsys, "--stack", "dev", "--base=--output=x")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize(
    ("ref", "advice"),
    [
        # Trap: both used to suggest `git fetch origin HEAD~200`.
        ("HEAD~200", "it goes back further than the 1 commits HEAD has; name a nearer one"),
        ("mian", "did you mean main?"),
    ],
)
def test_a_ref_git_cannot_find_gets_advice_that_fits_it(
    repo: Path, capsys: pytest.CaptureFixture[str], ref: str, advice: str
) -> None:
    code, out, err = run_diff(repo, capsys, "--stack", "dev", "--base", ref)
    assert (code, out) == (2, "")
    assert err == f"error: --base {ref}: is not a commit in {repo}; {advice}\n"


def test_a_shallow_clone_is_told_to_deepen(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "README").write_text("second commit\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", repo.as_uri(), str(shallow))
    code, _, err = run_diff(shallow, capsys, "--stack", "dev", "--base", "HEAD~1")
    assert code == 2 and err.count("\n") == 1
    assert err.endswith(
        "it goes back further than this shallow clone's 1 commits of HEAD; deepen it first "
        "(git fetch --unshallow)\n"
    )
    code, _, err = run_diff(shallow, capsys, "--stack", "dev", "--base", "release-1")
    assert err.endswith(
        "if it is a branch or tag of origin, fetch it first (git fetch origin release-1)\n"
    )


def test_a_stack_missing_at_ref_is_one_line_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(repo / "Pulumi.dev.yaml", repo / "Pulumi.qa.yaml")
    code, out, err = run_diff(repo, capsys, "--stack", "qa", "--base", "main")
    assert (code, out) == (2, "")
    assert err.startswith("error: main:Pulumi.qa.yaml: stack qa does not exist at main (")
    assert err.count("\n") == 1


def test_an_invalid_catalogue_on_either_side_is_one_line_exit_2(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = catalogue(repo)
    plugins[3]["schema"] = "Plugin_Bad"
    set_catalogue(repo, plugins)
    code, out, err = run_diff(repo, capsys, "--stack", "dev", "--base", "main")
    assert (code, out) == (2, "")
    assert err.startswith("error: in the working tree: naap-db:plugins[3].schema: 'Plugin_Bad'")
    assert err.count("\n") == 1
    git(repo, "commit", "-q", "-am", "bad")
    git(repo, "checkout", "-q", "HEAD~1", "--", "Pulumi.yaml")
    code, out, err = run_diff(repo, capsys, "--stack", "dev", "--base", "HEAD")
    assert (code, out) == (2, "")
    assert err.startswith("error: at HEAD (")
    assert "naap-db:plugins[3].schema: 'Plugin_Bad'" in err
    assert err.count("\n") == 1 and "naapdb-base-" not in err


def test_a_stack_file_set_twice_at_ref_names_the_revision(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (repo / "Pulumi.dev.yaml").read_text()
    (repo / "Pulumi.dev.yaml").write_text(
        text + "  naap-db:production: false\n  naap-db:production: false\n"
    )
    git(repo, "commit", "-q", "-am", "twice")
    (repo / "Pulumi.dev.yaml").write_text(text)
    code, _, err = run_diff(repo, capsys, "--stack", "dev", "--base", "HEAD")
    assert code == 2 and err.count("\n") == 1
    assert "HEAD:Pulumi.dev.yaml: key 'naap-db:production' is set twice" in err


def test_outside_a_git_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in STACK_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    code, _, err = run_diff(tmp_path, capsys, "--stack", "dev", "--base", "main")
    assert code == 2
    assert err == f"error: --base main: cannot be read: {tmp_path} is not in a git repository\n"

"""A stack's settings as they were at a git revision: that commit's
`Pulumi.yaml` and `Pulumi.<stack>.yaml`, read with `git show` (no checkout,
the working tree untouched) and validated exactly as the working tree's are.
Every failure is a `ConfigError` naming the revision or the file."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from difflib import get_close_matches
from pathlib import Path

from naapdb.errors import ConfigError
from naapdb.project import PROJECT_FILE
from naapdb.settings import StackSettings
from naapdb.stackfiles import load_stack_settings


def resolve_commit(ref: str, root: Path, option: str = "--base") -> str:
    """The commit `ref` (given as `option`) names in the repository holding `root`."""
    key = f"{option} {ref}"
    if not ref or ref.startswith("-"):
        raise ConfigError(key, "is not a git revision; name a branch, tag or commit")
    if shutil.which("git") is None:
        raise ConfigError(key, "cannot be read: git is not installed")
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if done.returncode != 0:
        inside = _git(root, "rev-parse", "--is-inside-work-tree")
        if inside.returncode != 0:
            raise ConfigError(key, f"cannot be read: {root} is not in a git repository")
        raise ConfigError(key, f"is not a commit in {root}; {_why_missing(ref, root)}")
    return done.stdout.strip()


def _why_missing(ref: str, root: Path) -> str:
    """What to do about a revision git cannot find: a relative one (`HEAD~200`)
    reaching past the history, or a name to fetch or to spell right."""
    shallow = _git(root, "rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    start = re.split(r"[~^@:]", ref, maxsplit=1)[0]
    if start != ref and _git(root, "rev-parse", "--verify", "--quiet", start).returncode == 0:
        count = _git(root, "rev-list", "--count", start).stdout.strip()
        if shallow:
            return (
                f"it goes back further than this shallow clone's {count} commits of {start}; "
                "deepen it first (git fetch --unshallow)"
            )
        return f"it goes back further than the {count} commits {start} has; name a nearer one"
    names = _git(
        root, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes", "refs/tags"
    ).stdout.split()
    close = get_close_matches(ref, names, n=3)
    if close:
        return f"did you mean {' or '.join(close)}?"
    remotes = _git(root, "remote").stdout.split()
    if remotes:
        remote = remotes[0]
        return f"if it is a branch or tag of {remote}, fetch it first (git fetch {remote} {ref})"
    return "name a branch, tag or commit of this repository"


def settings_at(ref: str, stack: str, root: Path, option: str = "--base") -> StackSettings:
    """The validated settings of `stack` at revision `ref` (given as `option`)."""
    commit = resolve_commit(ref, root, option)
    at = f"at {ref} ({commit[:12]})"
    files = {name: _show(root, commit, name) for name in (PROJECT_FILE, f"Pulumi.{stack}.yaml")}
    if files[PROJECT_FILE] is None:
        raise ConfigError(f"{ref}:{PROJECT_FILE}", f"does not exist {at}")
    if files[f"Pulumi.{stack}.yaml"] is None:
        raise ConfigError(
            f"{ref}:Pulumi.{stack}.yaml", f"stack {stack} does not exist {at}; nothing to compare"
        )
    with tempfile.TemporaryDirectory(prefix="naapdb-base-") as scratch:
        for name, text in files.items():
            (Path(scratch) / name).write_bytes(text or b"")
        try:
            return load_stack_settings(stack, Path(scratch))
        except ConfigError as error:
            message = str(error).replace(f"{scratch}/", f"{ref}:").replace(scratch, ref)
            raise ConfigError(at, message) from None


def _show(root: Path, commit: str, name: str) -> bytes | None:
    """The file `name` (beside `root`'s Pulumi.yaml) at `commit`, None if absent."""
    done = subprocess.run(
        ["git", "show", f"{commit}:./{name}"], cwd=root, capture_output=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)

"""A stack's settings as they were at a git revision: that commit's
`Pulumi.yaml` and `Pulumi.<stack>.yaml`, read with `git show` (no checkout,
the working tree untouched) and validated exactly as the working tree's are.
Every failure is a `ConfigError` naming the revision or the file."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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
        raise ConfigError(
            key, f"is not a commit in {root}; fetch it first (e.g. git fetch origin {ref})"
        )
    return done.stdout.strip()


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

"""The real Prisma CLI for the real `prisma db push` test, installed from npm.

Prisma's schema engine is a native binary that Prisma's postinstall fetches
from binaries.prisma.sh, which these machines cannot reach. Prisma 6 also
ships that engine compiled to WebAssembly inside the CLI's npm package, and
uses it instead of the binary when `prisma.config.ts` says `engine: "js"` and
names a driver adapter (`@prisma/adapter-pg`): then nothing is downloaded.
Prisma 7 dropped that path (its CLI always wants the binary), hence 6.19.3.

tests/prisma_cli/package.json and its package-lock.json pin the CLI, the
adapter and `pg` (every package with npm's sha512 `integrity`). `install`
copies both into `~/.cache/naap-db/prisma/<lockfile digest>`
($NAAPDB_PRISMA_CACHE) and runs `npm ci --ignore-scripts` there (npm checks
each tarball against the lockfile; the scripts are the engine downloads),
then checks the installed versions. A stamp written last marks a finished
install; a run whose stamp matches does nothing.

    venv/bin/python -m tests.prismacli

scripts/test.sh runs it where npm exists. docs/testing.md tells the story."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PINNED = Path(__file__).parent / "prisma_cli"
CACHE_VARIABLE = "NAAPDB_PRISMA_CACHE"
# Set by scripts/test.sh once it installed the CLI: a missing one then fails
# the real-Prisma test instead of skipping it.
REQUIRE_VARIABLE = "NAAPDB_REQUIRE_PRISMA"
STAMP = "INSTALLED"
FIX = "run `venv/bin/python -m tests.prismacli` (needs npm)"


class InstallError(Exception):
    """One line saying what refused and what to do."""


@functools.cache
def pinned_versions() -> dict[str, str]:
    """package name -> exact version, as tests/prisma_cli/package.json pins them."""
    manifest = json.loads((PINNED / "package.json").read_text())
    return dict(manifest["dependencies"])


@functools.cache
def lock_digest() -> str:
    return hashlib.sha256((PINNED / "package-lock.json").read_bytes()).hexdigest()


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "naap-db" / "prisma"


def root() -> Path:
    """The install of the pinned lockfile: package.json, lock, node_modules."""
    return cache_dir() / lock_digest()[:16]


def node_modules() -> Path:
    return root() / "node_modules"


def stamp() -> str:
    return f"prisma {pinned_versions()['prisma']} lock sha256 {lock_digest()}\n"


def installed() -> bool:
    path = root() / STAMP
    return path.is_file() and path.read_text() == stamp()


def describe() -> str:
    """Which Prisma, from where: the pytest header."""
    return f"Prisma CLI {pinned_versions()['prisma']} (npm, {root()})"


def install() -> Path:
    """The node_modules directory holding the pinned CLI, installed unless there."""
    if installed():
        return node_modules()
    if shutil.which("npm") is None:
        raise InstallError("npm is not on PATH; it installs the pinned Prisma CLI (install Node)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".install-") as work:
        scratch = Path(work) / "prisma"
        scratch.mkdir()
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINNED / name, scratch / name)
        ran = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        if ran.returncode != 0:
            raise InstallError(f"`npm ci` of {PINNED} failed: {ran.stderr.strip()}")
        _check_versions(scratch / "node_modules")
        (scratch / STAMP).write_text(stamp())
        if root().exists():
            if installed():
                return node_modules()  # another run finished first
            shutil.rmtree(root())  # a tree without its stamp: unfinished
        scratch.rename(root())
    return node_modules()


def _check_versions(modules: Path) -> None:
    for package, version in pinned_versions().items():
        manifest = modules / package / "package.json"
        found = json.loads(manifest.read_text()).get("version") if manifest.is_file() else None
        if found != version:
            raise InstallError(f"npm ci installed {package} {found}, not the pinned {version}")
    if not (modules / ".bin" / "prisma").exists():
        raise InstallError("npm ci installed no node_modules/.bin/prisma")


def main() -> int:
    try:
        install()
    except InstallError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())

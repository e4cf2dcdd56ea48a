"""The rotation Lambda's locked wheels, for tests of its build: downloaded
once per session with the lock's hashes checked, and the list of files a
zip built from them and the project may hold, derived from the wheels
themselves (not from what the build says it did)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.harness import ROOT

LOCK = ROOT / "scripts" / "rotation-lambda.lock"
PLATFORM = (
    "--platform", "manylinux2014_x86_64", "--python-version", "3.12", "--implementation", "cp",
)  # fmt: skip
# What pip writes into each installed distribution's dist-info besides the wheel's files.
INSTALLER_FILES = ("INSTALLER", "REQUESTED")


def locked_hashes(lock: Path = LOCK) -> set[str]:
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", lock.read_text()))


def download_locked_wheels(dest: Path) -> Path:
    """The lock's wheels in `dest` (pip checks every hash)."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
         "--require-hashes", "--no-deps", "--only-binary=:all:", *PLATFORM,
         "--dest", str(dest), "-r", str(LOCK)],
        check=True,
    )  # fmt: skip
    return dest


def wheel_files(wheel: Path) -> set[str]:
    """What installing `wheel` puts into site-packages."""
    found = set()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith("/"):
                continue
            head, _, rest = name.partition("/")
            if head.endswith(".data"):
                kind, _, inner = rest.partition("/")
                if kind in ("purelib", "platlib"):
                    found.add(inner)
                continue
            found.add(name)
            if head.endswith(".dist-info") and rest == "RECORD":
                found.update(f"{head}/{extra}" for extra in INSTALLER_FILES)
    return found


def allowed_zip_files(wheels: Path, root: Path = ROOT) -> set[str]:
    """Every file the locked wheels (found in `wheels` by their hashes) and
    the project may put into the zip."""
    hashes = locked_hashes()
    locked = [
        w for w in wheels.glob("*.whl") if hashlib.sha256(w.read_bytes()).hexdigest() in hashes
    ]
    assert len(locked) == len(hashes), f"not every locked wheel is in {wheels}"
    found = {name for wheel in locked for name in wheel_files(wheel)}
    package = root / "naapdb"
    found |= {
        p.relative_to(root).as_posix()
        for p in package.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    found.add("naapdb/rds-ca-bundle.pem")
    return found

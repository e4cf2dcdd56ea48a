"""The rotation Lambda's zip, built by the program itself when the stack
names none, so a fresh clone's `pulumi preview --stack prod` (and every CI
job that previews, deploys or checks prod) needs no step to remember.

It runs `scripts/build-rotation-lambda.py` (the one definition of what the
zip holds) into `build/rotation-lambda.zip` on every run: that build is
reproducible (sorted entries, fixed timestamps and modes), so an unchanged
checkout gives the same bytes and the preview shows no change to the
Lambda. The pinned wheels are downloaded once per pin set into
`~/.cache/naap-db/lambda-wheels/` (`$XDG_CACHE_HOME` honoured), or taken
from `$NAAPDB_LAMBDA_WHEELS` on a machine without an index.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

import pulumi

BUILD_SCRIPT = "scripts/build-rotation-lambda.py"
BUILT_ARCHIVE = "build/rotation-lambda.zip"
WHEELS_VARIABLE = "NAAPDB_LAMBDA_WHEELS"
CA_BUNDLE_VARIABLE = "NAAPDB_RDS_CA_BUNDLE"
COMPLETE = ".complete"


def build_default_archive(root: Path) -> Path:
    """Build the zip into `root/build/` and return its path."""
    script = _build_script(root / BUILD_SCRIPT)
    wheels = Path(os.environ[WHEELS_VARIABLE]) if os.environ.get(WHEELS_VARIABLE) else None
    wheels = wheels or _cached_wheels(script)
    out = root / BUILT_ARCHIVE
    arguments = ["--wheels", str(wheels), "--out", str(out)]
    # A bundle already at hand (the one the admin provider verifies RDS
    # with) is used rather than fetched; the build still checks it against
    # the repository's pin.
    if (bundle := os.environ.get(CA_BUNDLE_VARIABLE)) and Path(bundle).is_file():
        arguments += ["--ca-bundle", bundle]
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = script.main(arguments)
    if code != 0:
        raise pulumi.RunError(
            f"building the rotation Lambda ({BUILD_SCRIPT} --wheels {wheels}) failed: "
            f"{said.getvalue().strip()}"
        )
    return out


def wheel_cache(script: ModuleType) -> Path:
    """Where the wheels of the script's pins live: one folder per pin set."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    pins = "\n".join((*script.WHEELS, *script.PLATFORM)).encode()
    return base / "naap-db" / "lambda-wheels" / hashlib.sha256(pins).hexdigest()[:16]


def _cached_wheels(script: ModuleType) -> Path:
    """The pinned wheels, downloaded into the cache the first time."""
    folder = wheel_cache(script)
    if (folder / COMPLETE).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        try:
            script.download_wheels(Path(scratch))
        except (subprocess.CalledProcessError, OSError) as error:
            raise pulumi.RunError(
                f"downloading the rotation Lambda's wheels ({', '.join(script.WHEELS)}) "
                f"failed ({error}); on a machine without a package index, put them in a "
                f"folder named by ${WHEELS_VARIABLE}, or name a built zip with "
                "naap-db:credentials.lambdaArchive"
            ) from None
        (Path(scratch) / COMPLETE).touch()
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(scratch, folder)
        os.makedirs(scratch)  # TemporaryDirectory removes it on exit
    return folder


def _build_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_rotation_lambda", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

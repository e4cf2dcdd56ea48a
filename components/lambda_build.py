"""The rotation Lambda's zip, built by the program itself when the stack
names none, so a fresh clone's `pulumi preview --stack prod` (and every CI
job that previews, deploys or checks prod) needs no step to remember.

It runs `scripts/build-rotation-lambda.py` (the one definition of what the
zip holds) into `build/rotation-lambda.zip` on every run: the wheels are
installed from the hash-locked `scripts/rotation-lambda.lock` each time
(pip's own cache makes that quick and checks every byte against the lock;
no folder is trusted because a marker says it is complete), and the build is
reproducible (sorted entries, fixed timestamps and modes), so an unchanged
checkout gives the same bytes and the preview shows no change to the Lambda.
`$NAAPDB_LAMBDA_WHEELS` names a folder holding the locked wheels on a
machine without an index (hash-checked the same way).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from pathlib import Path
from types import ModuleType

import pulumi

from naapdb.rds_ca import CheckedBundle

BUILD_SCRIPT = "scripts/build-rotation-lambda.py"
BUILT_ARCHIVE = "build/rotation-lambda.zip"
WHEELS_VARIABLE = "NAAPDB_LAMBDA_WHEELS"


def build_default_archive(root: Path, ca_bundle: CheckedBundle | None = None) -> Path:
    """Build the zip into `root/build/` and return its path; `ca_bundle`
    (the one the admin connection verifies RDS with, already checked) is
    shipped in place of the committed one when it is another file."""
    script = _build_script(root / BUILD_SCRIPT)
    out = root / BUILT_ARCHIVE
    arguments = ["--out", str(out)]
    if wheels := os.environ.get(WHEELS_VARIABLE, "").strip():
        arguments += ["--wheels", wheels]
    if ca_bundle is not None and ca_bundle.path != script.COMMITTED_CA:
        arguments += ["--ca-bundle", str(ca_bundle.path)]
        arguments += [] if ca_bundle.pinned else ["--trust-ca-bundle"]
    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = script.main(arguments)
    if code != 0:
        raise pulumi.RunError(
            f"building the rotation Lambda ({BUILD_SCRIPT}) failed: {said.getvalue().strip()}"
        )
    return out


def _build_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_rotation_lambda", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

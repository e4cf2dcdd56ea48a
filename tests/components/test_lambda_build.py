"""The prod program builds the rotation Lambda's zip itself when the stack
names none: reproducibly (a preview shows no change), and from a fresh clone
with no `build/` directory, with nothing run beforehand."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from components import lambda_build
from tests.harness import ROOT, pin_the_bundle

FUNCTION = "aws:lambda/function:Function"


def fake_wheels(directory: Path) -> Path:
    """Stand-ins for the pinned wheels (the real ones: the fresh-clone test)."""
    directory.mkdir()
    name = "psycopg_binary-3.3.9-cp312-cp312-manylinux2014_x86_64.whl"
    with zipfile.ZipFile(directory / name, "w") as wheel:
        wheel.writestr("psycopg_binary/__init__.py", "BINARY = True\n")
    with zipfile.ZipFile(directory / "psycopg-3.3.9-py3-none-any.whl", "w") as wheel:
        wheel.writestr("psycopg/__init__.py", "")
    return directory


def checkout_copy(root: Path) -> Path:
    """What the build reads of a checkout: the script and the naapdb sources."""
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copytree(ROOT / "naapdb", root / "naapdb", ignore=shutil.ignore_patterns("__pycache__"))
    pin_the_bundle(root)
    return root


def test_the_built_zip_has_the_same_bytes_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(lambda_build.WHEELS_VARIABLE, str(fake_wheels(tmp_path / "wheels")))
    first = lambda_build.build_default_archive(checkout_copy(tmp_path / "one"))
    second = lambda_build.build_default_archive(checkout_copy(tmp_path / "two"))
    assert first == tmp_path / "one" / "build" / "rotation-lambda.zip"
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {"naapdb/rotate.py", "psycopg_binary/__init__.py"} <= {i.filename for i in infos}
    (tmp_path / "two" / "naapdb" / "rotate.py").write_text("# changed\n")
    changed = lambda_build.build_default_archive(tmp_path / "two")
    assert changed.read_bytes() != first.read_bytes()


def test_a_failed_download_names_the_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(lambda_build.WHEELS_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    with pytest.raises(Exception, match=r"downloading the rotation Lambda's wheels") as caught:
        lambda_build.build_default_archive(checkout_copy(tmp_path / "repo"))
    assert "NAAPDB_LAMBDA_WHEELS" in str(caught.value)
    assert not list((tmp_path / "cache").rglob("*.whl"))


# Runs the prod program under the mocks harness, in the clone, twice; prints
# the function's code path and the zip's sha256 after each run.
PROBE = """
import hashlib, json, sys
sys.path.insert(0, ".")
from tests import harness
seen = []
for _ in range(2):
    run = harness.run_program("prod")
    path = run.one("aws:lambda/function:Function").inputs["code"]["path"]
    seen.append([path, hashlib.sha256(open(path, "rb").read()).hexdigest()])
print(json.dumps(seen))
"""


def test_a_fresh_clone_previews_prod_with_no_build_step(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
    )
    assert not (clone / "build").exists()
    pin_the_bundle(clone)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NAAPDB_ROTATION_LAMBDA_ZIP", lambda_build.WHEELS_VARIABLE)
    }
    # A machine that never built anything: an empty cache for the wheels
    # (pip's own download cache kept, so a second run need not fetch again).
    env["PIP_CACHE_DIR"] = env.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (first_path, first_sha), (second_path, second_sha) = json.loads(done.stdout.splitlines()[-1])
    built = clone / "build" / "rotation-lambda.zip"
    assert first_path == second_path == str(built)
    assert first_sha == second_sha == hashlib.sha256(built.read_bytes()).hexdigest()
    with zipfile.ZipFile(built) as archive:
        entries = set(archive.namelist())
    assert "naapdb/rotate.py" in entries
    assert any(e.startswith("psycopg_binary/") and e.endswith(".so") for e in entries)
    assert list((tmp_path / "cache" / "naap-db" / "lambda-wheels").glob("*/psycopg_binary-*"))

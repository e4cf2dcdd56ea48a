"""The prod program builds the rotation Lambda's zip itself when the stack
names none: reproducibly (a preview shows no change), from a fresh clone
with no `build/` directory and nothing run beforehand, and from the
hash-locked wheels and the project only: no cache is trusted, and a file
that neither produced is never shipped (the Lambda holds the master secret)."""

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
from tests.harness import ROOT
from tests.lambda_wheels import allowed_zip_files

FUNCTION = "aws:lambda/function:Function"


def checkout_copy(root: Path) -> Path:
    """What the build reads of a checkout: the scripts and the naapdb sources."""
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copytree(ROOT / "naapdb", root / "naapdb", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def planted_wheel(directory: Path, name: str = "boto3", version: str = "9.9.9") -> Path:
    """A wheel nobody locked, carrying `<name>/__init__.py` (what an attacker
    who can write a cache folder would leave there)."""
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "import os  # planted\n")
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def test_the_built_zip_has_the_same_bytes_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked_wheels: Path
) -> None:
    monkeypatch.setenv(lambda_build.WHEELS_VARIABLE, str(locked_wheels))
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


def test_the_zip_holds_only_files_of_the_locked_wheels_and_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked_wheels: Path
) -> None:
    """Issue 21, gap 4: a planted wheel (in the folder the build reads, and
    in the old wheel cache behind its `.complete` marker) never reaches the
    zip; every file of the zip comes from a locked wheel or from naapdb."""
    wheels = tmp_path / "wheels"
    shutil.copytree(locked_wheels, wheels)
    planted_wheel(wheels)
    cache = tmp_path / "cache" / "naap-db" / "lambda-wheels" / "0123456789abcdef"
    cache.mkdir(parents=True)
    for wheel in locked_wheels.glob("*.whl"):
        shutil.copy(wheel, cache)
    planted_wheel(cache)
    (cache / ".complete").touch()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(lambda_build.WHEELS_VARIABLE, str(wheels))
    built = lambda_build.build_default_archive(checkout_copy(tmp_path / "repo"))
    names = zip_names(built)
    assert not any(name.startswith("boto3") for name in names)
    assert names == allowed_zip_files(locked_wheels, tmp_path / "repo")
    # The build lists them, each with the wheel (or the project) it came from.
    listing = dict(
        line.split("\t") for line in built.with_name(built.name + ".files").read_text().splitlines()
    )
    assert set(listing) == names
    assert listing["naapdb/rotate.py"] == "project"
    assert listing["psycopg_binary/__init__.py"] == "psycopg_binary-3.3.9"


def test_a_wheel_whose_bytes_differ_from_the_lock_builds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locked_wheels: Path
) -> None:
    wheels = tmp_path / "wheels"
    shutil.copytree(locked_wheels, wheels)
    (original,) = wheels.glob("psycopg-3*.whl")
    with zipfile.ZipFile(original, "a") as archive:
        archive.writestr("psycopg/_planted.py", "import os\n")
    monkeypatch.setenv(lambda_build.WHEELS_VARIABLE, str(wheels))
    root = checkout_copy(tmp_path / "repo")
    with pytest.raises(Exception, match=r"installing the locked wheels") as caught:
        lambda_build.build_default_archive(root)
    assert "HASH" in str(caught.value).upper()
    assert not (root / "build" / "rotation-lambda.zip").exists()


def test_a_failed_download_names_the_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(lambda_build.WHEELS_VARIABLE, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    with pytest.raises(Exception, match=r"installing the locked wheels") as caught:
        lambda_build.build_default_archive(checkout_copy(tmp_path / "repo"))
    assert "NAAPDB_LAMBDA_WHEELS" in str(caught.value)
    assert "\n" not in str(caught.value)


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
    """The committed CA bundle and the lock are all a clone needs: no pin to
    write, no bundle to fetch, no cache to fill."""
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)],
        check=True,
        capture_output=True,
    )
    assert not (clone / "build").exists()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NAAPDB_ROTATION_LAMBDA_ZIP", lambda_build.WHEELS_VARIABLE)
        and not key.startswith("NAAPDB_RDS_CA")
    }
    # pip's own download cache is kept (it checks every hash), so a second
    # run need not fetch again; nothing else is cached.
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
    entries = zip_names(built)
    assert "naapdb/rotate.py" in entries
    assert any(e.startswith("psycopg_binary/") and e.endswith(".so") for e in entries)
    with zipfile.ZipFile(built) as archive:
        assert (
            archive.read("naapdb/rds-ca-bundle.pem")
            == (ROOT / "naapdb/rds-ca-bundle.pem").read_bytes()
        )
    assert not (tmp_path / "cache" / "naap-db").exists()

"""The pinned Prisma CLI's installer (tests/prismacli.py): the lockfile pins
exactly what package.json names, every package with its sha512, and a
machine without npm gets one line saying so, nothing half-installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import prismacli


def test_the_lockfile_pins_package_json_exactly_with_integrity() -> None:
    lock = json.loads((prismacli.PINNED / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages[""]["dependencies"] == prismacli.pinned_versions()
    for name, version in prismacli.pinned_versions().items():
        assert packages[f"node_modules/{name}"]["version"] == version
    fetched = {path: entry for path, entry in packages.items() if path}
    assert fetched and all(entry["integrity"].startswith("sha512-") for entry in fetched.values())


def test_without_npm_the_install_says_so_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(prismacli.CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not prismacli.installed()
    with pytest.raises(prismacli.InstallError, match="npm is not on PATH"):
        prismacli.install()
    assert not (tmp_path / "cache").exists()
    assert prismacli.main() == 1

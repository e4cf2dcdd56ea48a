"""A folder of wheels made from what this interpreter's venv has installed,
so a test can let `pulumi up` create a project's venv from requirements.txt
exactly as it does for a user (`python -m venv`, then `pip install`), with
pip pointed at the folder instead of an index: PIP_NO_INDEX=1 and
PIP_FIND_LINKS=<folder> in the environment (pip reads its options there).

Each distribution in the requirements' closure (markers and extras
evaluated, plus pip, setuptools and wheel, which the toolchain upgrades
first) is packed back into a wheel from its RECORD: its files in
site-packages, its own WHEEL tags, a fresh RECORD. Packing pulumi-aws takes
a while, so the folder is cached under ~/.cache/naap-db/wheelhouse, keyed
by the exact versions it holds."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name

CACHE = Path("~/.cache/naap-db/wheelhouse").expanduser()
# What pulumi's pip toolchain installs before the requirements.
TOOLCHAIN = ("pip", "setuptools", "wheel")
# What pip writes into a dist-info at install time, not part of a wheel.
INSTALL_RECORDS = frozenset({"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"})


def requirements_of(files: Iterable[Path]) -> Iterator[Requirement]:
    """The requirements of pip requirement files, `-r` includes followed."""
    for path in files:
        for raw in path.read_text().splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("-r "):
                yield from requirements_of([path.parent / line[3:].strip()])
                continue
            yield Requirement(line)


def closure(requirements: Iterable[Requirement]) -> dict[str, importlib.metadata.Distribution]:
    """Every installed distribution the requirements pull in, by canonical name."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [*requirements, *(Requirement(name) for name in TOOLCHAIN)]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        distribution = importlib.metadata.distribution(requirement.name)
        found[name] = distribution
        for text in distribution.requires or ():
            child = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                pending.append(child)
    return found


def wheelhouse(requirement_files: Iterable[Path]) -> Path:
    """The cached folder of wheels for the requirement files' closure."""
    distributions = closure(requirements_of(requirement_files))
    pins = sorted(f"{name}=={d.version}" for name, d in distributions.items())
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    folder = CACHE / key
    if folder.is_dir():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{key}-", dir=CACHE))
    for distribution in distributions.values():
        pack(distribution, scratch)
    try:
        os.rename(scratch, folder)
    except OSError:  # another session packed it first
        shutil.rmtree(scratch)
    return folder


def pack(distribution: importlib.metadata.Distribution, into: Path) -> Path:
    """One installed distribution as a wheel in `into`."""
    info = Path(str(distribution._path))  # type: ignore[attr-defined]
    site = info.parent
    tag = _supported_tag((info / "WHEEL").read_text())
    stem = info.name[: -len(".dist-info")]
    target = into / f"{stem}-{tag}.whl"
    record: list[str] = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as wheel:
        for relative in distribution.files or ():
            path = site / relative
            name = relative.as_posix()
            if name.startswith("..") or "__pycache__" in relative.parts or not path.is_file():
                continue
            if relative.parent.name == info.name and relative.name in INSTALL_RECORDS:
                continue
            data = path.read_bytes()
            wheel.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={digest.decode()},{len(data)}")
        record.append(f"{info.name}/RECORD,,")
        wheel.writestr(f"{info.name}/RECORD", "\n".join(record) + "\n")
    return target


def _supported_tag(wheel_metadata: str) -> str:
    """The first tag of a WHEEL file this interpreter installs."""
    tags = re.findall(r"^Tag: (\S+)$", wheel_metadata, flags=re.MULTILINE)
    supported = {str(tag) for tag in sys_tags()}
    return next((tag for tag in tags if tag in supported), tags[0])

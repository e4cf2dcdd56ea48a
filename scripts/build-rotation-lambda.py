#!/usr/bin/env python3
"""Builds the rotation Lambda's zip, reproducibly: the `naapdb` package and
psycopg's binary wheels for the Lambda runtime (python3.12, x86_64,
manylinux2014). boto3 is not bundled: the runtime provides it.

    python scripts/build-rotation-lambda.py            # -> build/rotation-lambda.zip
    python scripts/build-rotation-lambda.py --wheels DIR   # offline, wheels already downloaded

The same sources and pinned wheels give the same bytes (sorted entries, fixed
timestamps and modes), so `pulumi up` sees no change to the Lambda unless
naapdb or a pin changed. Prints the zip's path and sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "rotation-lambda.zip"
# Pinned so that two builds bundle the same bytes; bump together.
WHEELS = ("psycopg==3.3.9", "psycopg-binary==3.3.9", "typing-extensions==4.15.0")
PLATFORM = (
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
PACKAGE = "naapdb"


def download_wheels(dest: Path) -> list[Path]:
    """The pinned wheels for the Lambda's platform (binary only, no resolver surprises)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *PLATFORM,
            "--no-deps",
            "--dest",
            str(dest),
            *WHEELS,
        ],
        check=True,
    )
    return sorted(dest.glob("*.whl"))


def wheel_entries(wheel: Path) -> Iterator[tuple[str, bytes]]:
    """(path in the zip, bytes) of every file a wheel installs into site-packages."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = info.filename
            head, _, rest = name.partition("/")
            # `<dist>.data/purelib|platlib/...` installs at the top level.
            if head.endswith(".data"):
                kind, _, inner = rest.partition("/")
                if kind not in ("purelib", "platlib"):
                    continue
                name = inner
            yield name, archive.read(info)


def package_entries(root: Path) -> Iterator[tuple[str, bytes]]:
    """The naapdb sources, without caches."""
    for path in sorted((root / PACKAGE).rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path.relative_to(root).as_posix(), path.read_bytes()


def build_zip(entries: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend on the entries only."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--wheels", type=Path, help="use the wheels in DIR instead of downloading")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.wheels:
            wheels = sorted(args.wheels.glob("*.whl"))
        else:
            wheels = download_wheels(Path(scratch))
        if not any(w.name.startswith("psycopg_binary-") for w in wheels):
            print("error: no psycopg_binary wheel for the Lambda platform", file=sys.stderr)
            return 2
        entries: dict[str, bytes] = {}
        for wheel in wheels:
            entries.update(wheel_entries(wheel))
        entries.update(package_entries(ROOT))
    data = build_zip(entries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"{args.out} sha256:{hashlib.sha256(data).hexdigest()} ({len(entries)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

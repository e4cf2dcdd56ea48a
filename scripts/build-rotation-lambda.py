#!/usr/bin/env python3
"""Builds the rotation Lambda's zip, reproducibly, from two sources only:
the `naapdb` package of this checkout (with its committed RDS CA bundle,
`naapdb/rds-ca-bundle.pem`, which the rotation verifies the database with)
and the wheels hash-locked in scripts/rotation-lambda.lock (psycopg's binary
wheels for the Lambda runtime: python3.12, x86_64, manylinux2014). boto3 is
not bundled: the runtime provides it.

    python scripts/build-rotation-lambda.py                 # -> build/rotation-lambda.zip
    python scripts/build-rotation-lambda.py --wheels DIR    # offline: the locked wheels in DIR
    python scripts/build-rotation-lambda.py --ca-bundle FILE [--trust-ca-bundle]

The wheels are installed with `pip install --require-hashes --no-deps`:
whatever the index, pip's cache or DIR holds, only files whose sha256 the
lock names are installed, and nothing else is read from any cache. Every
file of the zip is then accounted for: a file the locked wheels' RECORDs or
the project do not name stops the build. The listing is written next to the
zip (`rotation-lambda.zip.files`: path, then where it came from).

`--ca-bundle` ships another bundle (e.g. AWS's bundle for a region the
committed one lacks) in place of the committed one: it must have the pinned
digest, or be trusted explicitly with `--trust-ca-bundle` (naapdb/rds_ca.py).

The same sources give the same bytes (sorted entries, fixed timestamps and
modes), so `pulumi up` sees no change to the Lambda unless naapdb or the lock
changed. Prints the zip's path and sha256. Exit 0 built, 2 refused (one line).

To bump a locked wheel: `pip download --only-binary=:all: --platform
manylinux2014_x86_64 --python-version 3.12 --implementation cp --no-deps
NAME==VERSION`, check it, and put its version and sha256 in the lock.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from naapdb import rds_ca  # noqa: E402  (the checkout's package, also when run as a script)

DEFAULT_OUT = ROOT / "build" / "rotation-lambda.zip"
LOCK = ROOT / "scripts" / "rotation-lambda.lock"
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
CA_ENTRY = f"{PACKAGE}/{rds_ca.BUNDLE.name}"
# This checkout's committed bundle (the imported naapdb may be another checkout's).
COMMITTED_CA = ROOT / CA_ENTRY
LISTING_SUFFIX = ".files"
PROJECT_ORIGIN = "project"


class BuildError(RuntimeError):
    """One line naming what is wrong and the fix."""


def install_locked(lock: Path, target: Path, wheels: Path | None) -> None:
    """The lock's wheels, hash-checked, into `target` (never compiled: the
    Lambda's Python is not this one)."""
    if not lock.is_file():
        raise BuildError(f"--lock: {lock} does not exist")
    source = ["--no-index", "--find-links", str(wheels)] if wheels else []
    done = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--require-hashes", "--no-deps", "--only-binary=:all:", *PLATFORM,
            "--no-compile", "--target", str(target), *source, "-r", str(lock),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-600:]
        where = f"the wheels in {wheels}" if wheels else "the package index"
        raise BuildError(
            f"installing the locked wheels of {lock.name} from {where} failed: {said}; on a "
            "machine without an index, put the locked wheels in a folder and pass --wheels "
            "(NAAPDB_LAMBDA_WHEELS for the program)"
        )


def installed_entries(target: Path) -> dict[str, tuple[bytes, str]]:
    """path -> (bytes, the distribution whose RECORD names it) of everything
    pip installed; a file no RECORD names is refused."""
    owners: dict[str, str] = {}
    for record in sorted(target.glob("*.dist-info/RECORD")):
        distribution = record.parent.name.removesuffix(".dist-info")
        with record.open(newline="") as handle:
            for row in csv.reader(handle):
                if row:
                    owners[Path(row[0]).as_posix()] = distribution
    entries: dict[str, tuple[bytes, str]] = {}
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        name = path.relative_to(target).as_posix()
        if name not in owners:
            raise BuildError(
                f"{name} was installed but no locked wheel's RECORD names it; refusing to ship it"
            )
        entries[name] = (path.read_bytes(), owners[name])
    return entries


def package_entries(root: Path, ca_bundle: bytes) -> Iterator[tuple[str, bytes]]:
    """The naapdb sources, without caches, and the CA bundle to ship."""
    for path in sorted((root / PACKAGE).rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path.relative_to(root).as_posix(), path.read_bytes()
    yield CA_ENTRY, ca_bundle


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


def ca_bundle_to_ship(given: Path | None, trusted: bool) -> bytes:
    """The committed bundle, or the one given once it passes the pin check."""
    if given is None:
        return COMMITTED_CA.read_bytes()
    try:
        checked = rds_ca.check_bundle(given, "--ca-bundle", trusted, "--trust-ca-bundle")
    except rds_ca.UntrustedBundle as error:
        raise BuildError(str(error)) from None
    if notice := checked.notice("--trust-ca-bundle"):
        print(f"warning: {notice}", file=sys.stderr)
    return checked.path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    parser.add_argument("--lock", type=Path, default=LOCK, help=f"default {LOCK}")
    parser.add_argument("--wheels", type=Path, help="install the locked wheels from DIR (no index)")
    parser.add_argument("--ca-bundle", type=Path, help="ship this RDS CA bundle instead")
    parser.add_argument(
        "--trust-ca-bundle",
        action="store_true",
        help="ship --ca-bundle although its digest is not the pinned one",
    )
    args = parser.parse_args(argv)
    try:
        ca_bundle = ca_bundle_to_ship(args.ca_bundle, args.trust_ca_bundle)
        with tempfile.TemporaryDirectory() as scratch:
            install_locked(args.lock, Path(scratch), args.wheels)
            installed = installed_entries(Path(scratch))
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not any(name.startswith("psycopg_binary/") for name in installed):
        print(f"error: {args.lock.name} locks no psycopg-binary wheel", file=sys.stderr)
        return 2
    entries = {name: data for name, (data, _) in installed.items()}
    origins = {name: origin for name, (_, origin) in installed.items()}
    for name, data in package_entries(ROOT, ca_bundle):
        entries[name], origins[name] = data, PROJECT_ORIGIN
    data = build_zip(entries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    listing = args.out.with_name(args.out.name + LISTING_SUFFIX)
    listing.write_text("".join(f"{name}\t{origins[name]}\n" for name in sorted(entries)))
    print(f"{args.out} sha256:{hashlib.sha256(data).hexdigest()} ({len(entries)} files, {listing})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

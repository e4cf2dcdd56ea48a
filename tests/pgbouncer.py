"""A real PgBouncer in front of a test server, configured by what naap-db
renders (`naapdb.pgbouncer`): Debian's `pgbouncer` package (1.18 on
bookworm; `.ci/run` installs it).

The configuration is the dev pooler container's, with only the host
details of this machine changed: the server's address and port, a free
listening port on 127.0.0.1, and a log and pid file in a scratch folder.
PgBouncer refuses to run as root, so as root it runs as the suite's
unprivileged server user (tests/pgserver.py). Where PgBouncer is missing,
`pgbouncer_or_skip` skips naming the package, or fails when
`NAAPDB_REQUIRE_PGBOUNCER=1` (set by .ci/run once it installed it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from naapdb import pgbouncer
from naapdb.pooler import Pool
from tests.pgserver import PgServer, _chown, _run_as, free_port

REQUIRE_VARIABLE = "NAAPDB_REQUIRE_PGBOUNCER"
START_TIMEOUT = 15.0


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").is_file() else None
    )


def missing_reason() -> str | None:
    """Why PgBouncer cannot run here, or None."""
    if pgbouncer_binary() is None:
        return "PgBouncer is not installed (Debian: apt-get install pgbouncer; .ci/run does)"
    return None


def installed_version() -> tuple[int, int] | None:
    binary = pgbouncer_binary()
    if binary is None:
        return None
    output = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class RunningPgBouncer:
    """A PgBouncer process and where it listens."""

    host: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes]

    @property
    def auth_file(self) -> Path:
        return self.folder / "userlist.txt"

    @property
    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def write_auth_file(self, text: str) -> None:
        """A new file put in place: PgBouncer skips re-reading an auth file
        whose inode, size and mtime (in whole seconds) it has seen, so
        rewriting it in place within the second, with verifiers of the same
        length, went unnoticed (loader.c, auth_loaded)."""
        fresh = self.folder / "userlist.txt.new"
        fresh.write_text(text)
        _chown(self.folder)
        os.replace(fresh, self.auth_file)

    def reload(self) -> None:
        """Re-read the config and the auth file (SIGHUP, PgBouncer's RELOAD)."""
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def conninfo(self, user: str, password: str, dbname: str = "naap") -> str:
        return (
            f"host={self.host} port={self.port} dbname={dbname} user={user} "
            f"password={password} sslmode=disable connect_timeout=5"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@contextmanager
def running_pgbouncer(
    server: PgServer,
    pools: Iterable[Pool],
    passwords: Mapping[str, str],
    *,
    pool_mode: str = "transaction",
    max_client_connections: int = 200,
    on_port: Callable[[int], None] | None = None,
) -> Iterator[RunningPgBouncer]:
    """PgBouncer with naap-db's rendered config in front of `server`; the
    auth file is rendered from `passwords` (verifiers only). `on_port` is
    told the listening port before the first connection (the suite's
    connection guard)."""
    binary = pgbouncer_binary()
    assert binary is not None, missing_reason()
    pools = tuple(pools)
    folder = Path(tempfile.mkdtemp(prefix="naapdb-pgbouncer-"))
    os.chmod(folder, 0o755)
    port = free_port()
    config = pgbouncer.pgbouncer_ini(
        pools,
        server_host=server.host,
        server_port=server.port,
        listen_addr="127.0.0.1",
        listen_port=port,
        pool_mode=pool_mode,
        max_client_connections=max_client_connections,
        prepared_statements=pgbouncer.supports_prepared_statements(installed_version()),
        auth_file=str(folder / "userlist.txt"),
        extra={
            "logfile": str(folder / "pgbouncer.log"),
            "pidfile": str(folder / "pgbouncer.pid"),
        },
    )
    (folder / "pgbouncer.ini").write_text(config)
    (folder / "userlist.txt").write_text(pgbouncer.auth_file(passwords, pools))
    _run_as()  # the unprivileged user, as root
    _chown(folder)
    process = subprocess.Popen(
        [binary, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **_run_as(),  # type: ignore[arg-type]
    )
    bouncer = RunningPgBouncer("127.0.0.1", port, folder, process)
    try:
        _wait_listening(bouncer)
        if on_port is not None:
            on_port(port)
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(bouncer: RunningPgBouncer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if bouncer.process.poll() is not None:
            raise RuntimeError(f"PgBouncer exited {bouncer.process.returncode}:\n{bouncer.log}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((bouncer.host, bouncer.port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"PgBouncer did not listen within {START_TIMEOUT} s:\n{bouncer.log}")

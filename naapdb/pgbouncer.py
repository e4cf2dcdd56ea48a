"""PgBouncer's configuration for a stack's pools: `pgbouncer.ini` and the
auth file, rendered from the access plan, for the dev pooler container
(`components/pooler.py`) and for anyone running PgBouncer by hand.

Authentication never needs a password: the auth file holds each pooled
login's SCRAM-SHA-256 verifier, the very one naap-db gives PostgreSQL
(`naapdb.scram`, deterministic per password and role). PgBouncer checks a
client's SCRAM proof against it, and, because its verifier is identical to
the server's (same salt and iterations), logs in to the server with the
client's proof ("SCRAM pass-through"): the password exists neither in the
file nor in the container. The database entry names no user, which that
pass-through requires.

Only the pooled logins are in the auth file (`naapdb.pooler.is_pooled`):
the migrator, and any other login that goes direct, cannot log in through
the pooler at all. Each login's pool is capped by `max_user_connections`,
its connection limit, so one plugin's pool full makes that plugin's
clients wait (up to `query_wait_timeout`) while every other pool serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from naapdb import names, scram
from naapdb.pooler import Pool

# Protocol-level prepared statements in transaction mode (PgBouncer 1.21+):
# how many each server connection may cache.
PREPARED_STATEMENTS_SINCE = (1, 21)
MAX_PREPARED_STATEMENTS = 200
AUTH_FILE = "/etc/pgbouncer/userlist.txt"
CONFIG_FILE = "/etc/pgbouncer/pgbouncer.ini"
_VERSION = re.compile(r"(\d+)\.(\d+)")


def image_version(image: str) -> tuple[int, int] | None:
    """PgBouncer's major and minor from an image tag (`...:v1.25.1-p0` -> (1, 25))."""
    match = _VERSION.search(image.rpartition(":")[2])
    return (int(match.group(1)), int(match.group(2))) if match else None


def supports_prepared_statements(version: tuple[int, int] | None) -> bool:
    return version is not None and version >= PREPARED_STATEMENTS_SINCE


def pgbouncer_ini(
    pools: Iterable[Pool],
    *,
    server_host: str,
    server_port: int,
    listen_addr: str,
    listen_port: int,
    pool_mode: str,
    max_client_connections: int,
    prepared_statements: bool,
    auth_file: str = AUTH_FILE,
    extra: Mapping[str, str] | None = None,
) -> str:
    """`pgbouncer.ini`: one database (`naap`), one pool per pooled login.
    `extra` adds settings of the host it runs on (a logfile, a pidfile)."""
    pools = tuple(pools)
    largest = max((pool.size for pool in pools), default=1)
    total = sum(pool.size for pool in pools)
    settings = {
        "listen_addr": listen_addr,
        "listen_port": str(listen_port),
        "unix_socket_dir": "",
        "auth_type": "scram-sha-256",
        "auth_file": auth_file,
        "pool_mode": pool_mode,
        # Each pool's own cap is its login's max_user_connections below.
        "default_pool_size": str(largest),
        "reserve_pool_size": "0",
        "max_client_conn": str(max_client_connections),
        # Drivers (JDBC) send it; PgBouncer would refuse the connection otherwise.
        "ignore_startup_parameters": "extra_float_digits",
        **(
            {"max_prepared_statements": str(MAX_PREPARED_STATEMENTS)} if prepared_statements else {}
        ),
        **(extra or {}),
    }
    lines = [
        "; Rendered by naap-db (naapdb/pgbouncer.py) from the access plan: do not edit.",
        "[databases]",
        # No user= on the entry: SCRAM pass-through logs in as the client.
        f"{names.DATABASE} = host={server_host} port={int(server_port)} "
        f"dbname={names.DATABASE} max_db_connections={total}",
        "",
        "[users]",
        *(f"{pool.login} = max_user_connections={pool.size}" for pool in pools),
        "",
        "[pgbouncer]",
        *(f"{key} = {value}" for key, value in settings.items()),
    ]
    return "\n".join(lines) + "\n"


def auth_file(passwords: Mapping[str, str], pools: Iterable[Pool]) -> str:
    """The auth file: `"login" "SCRAM-SHA-256$..."` for each pooled login
    whose password the caller knows; never a password."""
    lines = []
    for pool in pools:
        password = passwords.get(pool.login)
        if password is not None:
            lines.append(f'"{pool.login}" "{scram.verifier(password, pool.login)}"')
    return "\n".join(lines) + "\n"

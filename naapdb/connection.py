"""Connections for the ops commands: the connection string comes from the
environment (never argv, so it is never in a process listing or shell
history), and no error message ever carries its password: a string libpq
cannot parse is reported without any of its text (libpq quotes the part it
choked on, which may be the password), and a connection error is redacted
with the password the string holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import psycopg

DATABASE_URL = "DATABASE_URL"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# What libpq quotes of the string it could not parse ("missing "=" after "X"").
_QUOTED = re.compile(r'"[^"]*"')
CONNINFO_FORMS = (
    "a postgresql://user:password@host:port/dbname URL with its parts percent-encoded, "
    "or key=value pairs with values holding spaces in single quotes"
)


class ConnectionError_(RuntimeError):
    """A connection problem, already redacted: safe to print."""


def one_line(text: object) -> str:
    """`text` (an error, a server message) on one line: runs of whitespace,
    newlines included, become one space."""
    return " ".join(str(text).split())


def redact(text: str, url: str | None = None) -> str:
    """`text` with every password it may quote replaced by `***`: URL and
    keyword forms, and the literal password of `url` wherever it appears."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    text = _KEYWORD_PASSWORD.sub(r"\1***", text)
    for secret in _passwords_of(url):
        text = text.replace(secret, "***")
    return text


def _passwords_of(url: str | None) -> list[str]:
    if not url:
        return []
    found: list[str] = []
    if "://" in url:
        password = urlsplit(url).password
        if password:
            found += [password, unquote(password)]
    match = _KEYWORD_PASSWORD.search(url)
    if match:
        found.append(match.group(2).strip("'"))
    return [secret for secret in found if len(secret) >= 3]


def parse(url: str, what: str = DATABASE_URL) -> dict[str, str]:
    """The connection string's parameters; a string libpq cannot parse is
    refused with its message's quoted parts masked, since any of them may be
    the password (a space in it, a stray `%`, a string that is only a password)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except (psycopg.Error, ValueError, TypeError) as error:
        reason = _QUOTED.sub(_masked_quote, one_line(error))
        raise ConnectionError_(
            f"{what} is not a connection string libpq can read ({redact(reason, url)}); "
            f"use {CONNINFO_FORMS}"
        ) from None


def _masked_quote(match: re.Match[str]) -> str:
    """A quoted part of libpq's message, masked unless it is one character (`"="`)."""
    return match.group(0) if len(match.group(0)) <= 3 else '"***"'


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Connect, turning any failure into a redacted one-line `ConnectionError_`."""
    import psycopg

    password = parse(url).get("password", "")
    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, **kwargs)
    except (psycopg.Error, ValueError) as error:
        message = redact(one_line(error), url)
        if len(password) >= 3:
            message = message.replace(password, "***")
        raise ConnectionError_(f"cannot connect: {message}") from None


def with_verify_full(url: str, sslrootcert: str) -> str:
    """`url` with `sslmode=verify-full` and `sslrootcert` set, whatever it
    said (a key=value string; the password stays where it was)."""
    from psycopg.conninfo import make_conninfo

    parse(url)  # a bad string is refused, masked, before make_conninfo quotes it
    return make_conninfo(url, sslmode="verify-full", sslrootcert=sslrootcert)


# The server a command read, for its report (`verify`): where it is, and
# whether it is a primary or a replica replaying WAL (and how far behind).
SERVER_QUERY = (
    "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_last_wal_replay_lsn()::text, "
    "extract(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()), "
    "pg_catalog.current_setting('server_version'), "
    "host(pg_catalog.inet_server_addr()), pg_catalog.inet_server_port()"
)


@dataclass(frozen=True)
class ServerRead:
    """Which server a connection reached (never its credentials): its own
    address as the server reports it, and the address dialled when that
    differs (a pooler, a DNS name)."""

    host: str
    port: int
    version: str
    in_recovery: bool
    replay_lsn: str | None = None
    replay_age_seconds: float | None = None
    """Seconds since the last replayed transaction committed on the primary."""
    via: str | None = None
    """`host:port` dialled, when not the server's own (a pooler in between)."""

    def describe(self) -> str:
        """e.g. `replica 10.0.0.7:5432 (PostgreSQL 16.2, in recovery, replayed
        up to 0/3000148, last transaction 0.4 s old)`."""
        where = f"{self.host}:{self.port} (PostgreSQL {self.version}"
        through = f"; through {self.via}" if self.via else ""
        if not self.in_recovery:
            return f"primary {where}{through})"
        lag = (
            f", last transaction {self.replay_age_seconds:.1f} s old"
            if self.replay_age_seconds is not None
            else ""
        )
        return f"replica {where}, in recovery, replayed up to {self.replay_lsn}{lag}{through})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "version": self.version,
            "role": "replica" if self.in_recovery else "primary",
            "replay_lsn": self.replay_lsn,
            "replay_age_seconds": self.replay_age_seconds,
            "via": self.via,
        }


def server_read(connection: psycopg.Connection[Any]) -> ServerRead:
    """Ask the server which it is: a primary, or a replica in recovery."""
    row = connection.execute(SERVER_QUERY).fetchone()
    assert row is not None
    in_recovery, lsn, age, version, address, port = row
    dialled = (str(connection.info.host), int(connection.info.port))
    # Over a Unix socket the server has no address of its own to report.
    own = (str(address), int(port)) if address is not None else dialled
    return ServerRead(
        host=own[0],
        port=own[1],
        version=str(version).split()[0],
        in_recovery=bool(in_recovery),
        replay_lsn=lsn if in_recovery else None,
        replay_age_seconds=float(age) if in_recovery and age is not None else None,
        via=f"{dialled[0]}:{dialled[1]}" if dialled != own else None,
    )

"""Connections for the ops commands: the connection string comes from the
environment (never argv, so it is never in a process listing or shell
history), and no error message ever carries its password: a string libpq
cannot parse is reported without any of its text (libpq quotes the part it
choked on, which may be the password), and a connection error is redacted
with the password the string holds."""

from __future__ import annotations

import re
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

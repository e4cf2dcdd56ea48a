"""Connections for the ops commands: the connection string comes from the
environment (never argv, so it is never in a process listing or shell
history), and no error message ever carries its password."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import psycopg

DATABASE_URL = "DATABASE_URL"
_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


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


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Connect, turning any failure into a redacted one-line `ConnectionError_`."""
    import psycopg

    kwargs.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(url, **kwargs)
    except (psycopg.Error, ValueError) as error:
        raise ConnectionError_(f"cannot connect: {redact(one_line(error), url)}") from None

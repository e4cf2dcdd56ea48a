"""The error `recover` stops with: one line, safe to print (no password)."""

from __future__ import annotations

from naapdb.connection import ConnectionError_


class RecoverError(ConnectionError_):
    """Recovery cannot go on; nothing after the step named was done."""

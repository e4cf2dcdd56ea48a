"""The one error type bad configuration raises, so every entry point (the
Pulumi program, the command line, the hooks) prints the same one-line message."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad configuration: names the key, the offending value and the fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

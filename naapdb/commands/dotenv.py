"""`dotenv [--role NAME] [--out FILE]`: the `DATABASE_URL=` line of one login
role, from `pulumi stack output --json --show-secrets` on stdin:

    pulumi stack output --json --show-secrets | bin/naapdb dotenv --out .env

Prints the line (or writes FILE, created with mode 0600 and nothing wider
at any moment) and nothing else. An existing FILE keeps its other lines:
only its `DATABASE_URL=` line is replaced (or added), so `--out .env` after
a rotation never drops the variables a developer keeps beside it. Exit 2
with one line on bad input, which never quotes a connection string."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from naapdb import names

OUTPUT = "connection_urls"
SHOW_SECRETS = "pulumi stack output --json --show-secrets"
FILE_MODE = 0o600
VARIABLE = "DATABASE_URL"


class DotenvError(ValueError):
    """Bad input: one line, safe to print."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--role",
        default=names.APP,
        help=f"the login role (default {names.APP}, the platform's shared pool; under "
        "alternating rotation an identity picks its _a login)",
    )
    parser.add_argument(
        "--out", default=None, metavar="FILE", help="write FILE (mode 0600) instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    try:
        if sys.stdin.isatty():
            raise DotenvError(f"pipe the stack outputs in: {SHOW_SECRETS} | bin/naapdb dotenv")
        urls = connection_urls(sys.stdin.read())
        role, note = pick_role(urls, args.role)
        if note:
            print(note, file=sys.stderr)
        line = f"{VARIABLE}={urls[role]}\n"
        if args.out:
            write_private(args.out, merged(read_existing(args.out), line))
        else:
            sys.stdout.write(line)
    except DotenvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def connection_urls(text: str) -> dict[str, str]:
    """The `connection_urls` output of a stack, checked."""
    try:
        outputs: Any = json.loads(text)
    except json.JSONDecodeError:
        raise DotenvError(f"stdin is not JSON; pipe `{SHOW_SECRETS}` into this command") from None
    if not isinstance(outputs, Mapping) or OUTPUT not in outputs:
        raise DotenvError(
            f"the stack outputs have no {OUTPUT}; run `pulumi up` on the stack first, "
            f"then `{SHOW_SECRETS}`"
        )
    urls = outputs[OUTPUT]
    if isinstance(urls, str):
        raise DotenvError(f"{OUTPUT} is hidden; add --show-secrets: `{SHOW_SECRETS}`")
    if not isinstance(urls, Mapping) or not all(
        isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))
        for url in urls.values()
    ):
        raise DotenvError(f"{OUTPUT} is not a map of login role to postgresql:// URL")
    return {str(role): str(url) for role, url in urls.items()}


def pick_role(urls: Mapping[str, str], role: str) -> tuple[str, str | None]:
    """The login role to print, and a note for stderr when it is an identity's
    alternating login rather than the role asked for."""
    if role in urls:
        return role, None
    first, second = names.alternate_logins(role)
    if first in urls:
        return first, (
            f"note: {role} logs in as {first}/{second} (alternating "
            f"rotation); using {first} with its first password. Once rotated, read the "
            f"current login from its Secrets Manager secret (stack output secret_arns)."
        )
    raise DotenvError(f"no login role {role!r} in {OUTPUT}; known: {', '.join(sorted(urls))}")


def read_existing(path: str) -> str:
    """The text of `path` if it exists (never through a symlink), else ""."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return ""
    except OSError as error:
        raise DotenvError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as existing:
        return existing.read()


def merged(existing: str, line: str) -> str:
    """`existing` with its DATABASE_URL line (plain or `export`ed) replaced by
    `line` where the first one was, or `line` added at the end."""
    lines = existing.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    result: list[str] = []
    for old in lines:
        if not _sets_url(old):
            result.append(old)
        elif line not in result:
            result.append(line)
    return "".join(result if line in result else [*result, line])


def _sets_url(text: str) -> bool:
    return text.lstrip().removeprefix("export ").lstrip().startswith(f"{VARIABLE}=")


def write_private(path: str, text: str) -> None:
    """Write `text` to `path` readable by its owner only: created 0600, or
    truncated and narrowed to 0600 before a byte is written; never through a
    symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, FILE_MODE)
    except OSError as error:
        raise DotenvError(f"cannot write {path}: {error.strerror}") from None
    try:
        os.fchmod(descriptor, FILE_MODE)
        data = text.encode()
        while data:
            data = data[os.write(descriptor, data) :]
    finally:
        os.close(descriptor)

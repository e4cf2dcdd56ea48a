"""`dotenv [--role NAME] [--out FILE]`: the `DATABASE_URL=` line of one login
role, from `pulumi stack output --json --show-secrets` on stdin:

    pulumi stack output --json --show-secrets | bin/naapdb dotenv --out .env

Prints the line (or writes FILE, created with mode 0600 and nothing wider
at any moment) and nothing else. An existing FILE keeps its other lines:
only the lines this command writes are replaced (or added), so `--out .env`
after a rotation never drops the variables a developer keeps beside it. Exit
2 with one line on bad input, which never quotes a connection string.

With a pooler (stack output `pooler`), an application login's URL goes
through it: a `#` comment line above it, and the same note on stderr, say
what that pooling means for the client (prepared statements, Prisma's
`pgbouncer=true`). With read replicas (stack output `read_urls`), a login
that reads there also gets `DATABASE_READ_URL=`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from naapdb import names

OUTPUT = "connection_urls"
READ_OUTPUT = "read_urls"
POOLER_OUTPUT = "pooler"
DIRECT_OUTPUT = "direct_urls"
SHOW_SECRETS = "pulumi stack output --json --show-secrets"
FILE_MODE = 0o600
VARIABLE = "DATABASE_URL"
READ_VARIABLE = "DATABASE_READ_URL"


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
        outputs = stack_outputs(sys.stdin.read())
        urls = connection_urls(outputs)
        role, note = pick_role(urls, args.role)
        if note:
            print(note, file=sys.stderr)
        pooled = pooling_note(outputs, role)
        if pooled:
            print(f"note: {pooled}", file=sys.stderr)
        line = (f"# {pooled}\n" if pooled else "") + f"{VARIABLE}={urls[role]}\n"
        read_url = read_urls(outputs).get(role)
        if read_url:
            line += f"{READ_VARIABLE}={read_url}\n"
        if args.out:
            write_private(args.out, merged(read_existing(args.out), line))
        else:
            sys.stdout.write(line)
    except DotenvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def stack_outputs(text: str) -> Mapping[str, Any]:
    """The stack outputs on stdin, as JSON."""
    try:
        outputs: Any = json.loads(text)
    except json.JSONDecodeError:
        raise DotenvError(f"stdin is not JSON; pipe `{SHOW_SECRETS}` into this command") from None
    if not isinstance(outputs, Mapping) or OUTPUT not in outputs:
        raise DotenvError(
            f"the stack outputs have no {OUTPUT}; run `pulumi up` on the stack first, "
            f"then `{SHOW_SECRETS}`"
        )
    return outputs


def connection_urls(outputs: Mapping[str, Any] | str) -> dict[str, str]:
    """The `connection_urls` output of a stack, checked."""
    if isinstance(outputs, str):
        outputs = stack_outputs(outputs)
    return _url_map(outputs, OUTPUT)


def read_urls(outputs: Mapping[str, Any]) -> dict[str, str]:
    """The `read_urls` output (stacks with read replicas), checked; {} without."""
    return _url_map(outputs, READ_OUTPUT) if READ_OUTPUT in outputs else {}


def _url_map(outputs: Mapping[str, Any], name: str) -> dict[str, str]:
    urls = outputs[name]
    if isinstance(urls, str):
        raise DotenvError(f"{name} is hidden; add --show-secrets: `{SHOW_SECRETS}`")
    if not isinstance(urls, Mapping) or not all(
        isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))
        for url in urls.values()
    ):
        raise DotenvError(f"{name} is not a map of login role to postgresql:// URL")
    return {str(role): str(url) for role, url in urls.items()}


def pooling_note(outputs: Mapping[str, Any], role: str) -> str | None:
    """What the pooler means for this login's URL, when it goes through one
    (its URL is not its direct one)."""
    pooler = outputs.get(POOLER_OUTPUT)
    direct = outputs.get(DIRECT_OUTPUT)
    if not isinstance(pooler, Mapping) or not isinstance(direct, Mapping):
        return None
    if direct.get(role) == outputs[OUTPUT].get(role):
        return None
    where = f"{pooler.get('host')}:{pooler.get('port')}"
    return f"{VARIABLE} goes through the {pooler.get('kind')} pooler at {where}: " + str(
        pooler.get("notes") or ""
    )


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


# The lines this command writes: what a new run replaces in an existing file.
OWN_VARIABLES = (VARIABLE, READ_VARIABLE)
POOLING_COMMENT = f"# {VARIABLE} goes through the "


def merged(existing: str, block: str) -> str:
    """`existing` with the lines this command writes (its variables, plain or
    `export`ed, and its pooling note) replaced by `block` where the first of
    them was, or `block` added at the end; every other line kept."""
    lines = existing.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    result: list[str] = []
    placed = False
    for old in lines:
        if not _written_here(old):
            result.append(old)
        elif not placed:
            result.append(block)
            placed = True
    return "".join(result if placed else [*result, block])


def _written_here(text: str) -> bool:
    if text.startswith(POOLING_COMMENT):
        return True
    assignment = text.lstrip().removeprefix("export ").lstrip()
    return any(assignment.startswith(f"{name}=") for name in OWN_VARIABLES)


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

"""Prisma mode of the push, and the check that ends "add the schema in three places".

- `read_schemas` parses the `schemas` list of a `schema.prisma` datasource (comments,
  multi-line lists, several generators and `directUrl` allowed; `schemas` counts only
  inside the `datasource` block).
- `compare` names each schema missing from either side against the catalogue.
- `prisma_url`, `push_command` and `prisma_environment` build what the platform's own
  `npx prisma db push` runs with: the migrator's URL with `options=-c role=naap_owner`
  (so Prisma's objects are owned by `naap_owner`, as with the SQL push) in the
  environment, never in argv, and no client generation (Prisma 6 needs
  `--skip-generate`; Prisma 7 never generates on push and has no such flag).
  `--accept-data-loss` is never passed: Prisma refuses a change that would drop data.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from naapdb import names
from naapdb.catalog import Catalog

SCHEMA_CANDIDATES = ("prisma/schema.prisma", "schema.prisma")
ROLE_OPTION = f"-c role={names.OWNER}"
NPX = ("npx", "--no-install", "prisma")
VERSION_LINE = re.compile(r"^prisma\s*:\s*(\d+)\.", re.MULTILINE)
FIRST_VERSION_WITHOUT_GENERATE_ON_PUSH = 7


class PrismaSchemaError(Exception):
    """The file has no parsable `datasource` `schemas` list: one line, naming the file."""


@dataclass(frozen=True)
class SchemaDiff:
    """Schemas in the catalogue but not in Prisma's list, and the other way round."""

    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not self.missing and not self.extra


# ---------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\]=(),@.:])
  | (?P<other>[^\s])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int


def _tokens(text: str, label: str) -> Iterator[_Token]:
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None  # `other` matches any non-space character
        kind = match.lastgroup or "other"
        if kind == "other" and text.startswith("/*", position):
            raise PrismaSchemaError(f"{label}:{line}: unterminated /* comment")
        if kind == "other" and match.group() == '"':
            raise PrismaSchemaError(f"{label}:{line}: unterminated string")
        if kind not in ("space", "line_comment", "block_comment"):
            yield _Token(kind, match.group(), line)
        line += match.group().count("\n")
        position = match.end()


def read_schemas(path: Path) -> tuple[str, ...]:
    """The datasource's `schemas` list of a `schema.prisma` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PrismaSchemaError(
            f"{path}: no such file; name the platform's schema.prisma (in the NAAP "
            "repository: packages/database/prisma/schema.prisma) or the directory Prisma runs in"
        ) from None
    except UnicodeDecodeError:
        raise PrismaSchemaError(f"{path}: is not UTF-8 text; name a schema.prisma file") from None
    except OSError as error:
        raise PrismaSchemaError(f"{path}: cannot read: {error.strerror or error}") from None
    return parse_schemas(text, str(path))


def parse_schemas(text: str, label: str = "schema.prisma") -> tuple[str, ...]:
    """The `schemas` list of the one `datasource` block of a Prisma schema."""
    tokens = list(_tokens(text, label))
    found: list[tuple[str, ...]] = []
    datasources = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind == "word" and _is_block_start(tokens, index):
            end = _block_end(tokens, index + 2, label)
            if token.text == "datasource":
                datasources += 1
                schemas = _schemas_in(tokens[index + 3 : end], label)
                if schemas is not None:
                    found.append(schemas)
            index = end + 1
            continue
        index += 1
    if datasources == 0:
        raise PrismaSchemaError(f"{label}: no `datasource` block")
    if datasources > 1:
        raise PrismaSchemaError(f"{label}: {datasources} `datasource` blocks; Prisma takes one")
    if not found:
        raise PrismaSchemaError(
            f'{label}: the datasource has no `schemas` list; add schemas = ["public", ...]'
        )
    return found[0]


def _is_block_start(tokens: Sequence[_Token], index: int) -> bool:
    """`keyword name {`, e.g. `datasource db {` or `model User {`."""
    return (
        index + 2 < len(tokens)
        and tokens[index + 1].kind == "word"
        and tokens[index + 2].text == "{"
        and _starts_line(tokens, index)
    )


def _starts_line(tokens: Sequence[_Token], index: int) -> bool:
    return index == 0 or tokens[index - 1].line < tokens[index].line


def _block_end(tokens: Sequence[_Token], open_index: int, label: str) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        if tokens[index].text == "{":
            depth += 1
        elif tokens[index].text == "}":
            depth -= 1
            if depth == 0:
                return index
    raise PrismaSchemaError(f"{label}:{tokens[open_index].line}: block is never closed")


def _schemas_in(body: Sequence[_Token], label: str) -> tuple[str, ...] | None:
    """`schemas = ["a", "b",]` among the block's top-level properties."""
    for index, token in enumerate(body):
        if token.kind != "word" or token.text != "schemas" or not _starts_line(body, index):
            continue
        if index + 2 >= len(body) or body[index + 1].text != "=" or body[index + 2].text != "[":
            raise PrismaSchemaError(f'{label}:{token.line}: expected schemas = ["...", ...]')
        values: list[str] = []
        expect_value = True
        for item in body[index + 3 :]:
            if item.text == "]":
                return tuple(values)
            if expect_value and item.kind == "string":
                values.append(_unquote(item.text))
                expect_value = False
            elif not expect_value and item.text == ",":
                expect_value = True
            else:
                raise PrismaSchemaError(
                    f"{label}:{item.line}: unexpected {item.text!r} in the schemas list"
                )
        raise PrismaSchemaError(f"{label}:{token.line}: the schemas list is never closed")
    return None


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def compare(prisma_schemas: Sequence[str], catalog: Catalog) -> SchemaDiff:
    """What each side lacks, in the catalogue's and the file's order."""
    declared = catalog.schemas
    return SchemaDiff(
        missing=tuple(s for s in declared if s not in prisma_schemas),
        extra=tuple(dict.fromkeys(s for s in prisma_schemas if s not in declared)),
    )


def describe(diff: SchemaDiff, label: str) -> list[str]:
    """One line per schema that differs."""
    lines = [
        f"{label}: missing {schema}: in the catalogue (naap-db:plugins), not in the "
        "datasource `schemas`; add it there"
        for schema in diff.missing
    ]
    lines += [
        f"{label}: extra {schema}: in the datasource `schemas`, not in the catalogue; "
        "add its plugin to Pulumi.yaml or remove it from the list"
        for schema in diff.extra
    ]
    return lines


PUSH_SETTING_FIX = "point naap-db:push.prismaDir at the platform's packages/database"


def find_schema_file(prisma_dir: Path, fix: str = PUSH_SETTING_FIX) -> Path:
    """Where Prisma looks by default in the directory it runs in; `fix` ends
    the message when it finds none (the caller knows what the user passed)."""
    for candidate in SCHEMA_CANDIDATES:
        path = prisma_dir / candidate
        if path.is_file():
            return path
    raise PrismaSchemaError(f"{prisma_dir}: no {' or '.join(SCHEMA_CANDIDATES)}; {fix}")


# ---------------------------------------------------------------- running Prisma


def prisma_url(database_url: str) -> str:
    """The migrator's URL with `options=-c role=naap_owner` (URL-encoded), so
    every object Prisma creates is owned by `naap_owner`. A key=value conninfo
    is turned into a URL first: Prisma reads URLs only."""
    url = database_url if "://" in database_url else _conninfo_to_url(database_url)
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = [value for key, value in query if key == "options"]
    query = [(key, value) for key, value in query if key != "options"]
    existing = " ".join(options)
    if ROLE_OPTION not in existing:
        existing = f"{existing} {ROLE_OPTION}".strip()
    query.append(("options", existing))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _conninfo_to_url(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items()}
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = params.pop("host", "localhost")
    port = params.pop("port", "5432")
    dbname = quote(params.pop("dbname", names.DATABASE), safe="")
    query = urlencode(params, quote_via=quote)
    return f"postgresql://{auth}{host}:{port}/{dbname}" + (f"?{query}" if query else "")


def prisma_major_version(
    prisma_dir: Path, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
) -> int | None:
    """The major version of the platform's installed Prisma CLI (`npx --no-install`:
    nothing is downloaded at deploy time), or None when it cannot run."""
    try:
        result = run(
            [*NPX, "--version"],
            cwd=prisma_dir,
            capture_output=True,
            text=True,
            timeout=120,
            env=_without_database_url(os.environ),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = VERSION_LINE.search(result.stdout or "")
    if result.returncode != 0 or match is None:
        return None
    return int(match.group(1))


def push_command(major_version: int) -> list[str]:
    """`npx prisma db push` without client generation, for the installed version."""
    command = [*NPX, "db", "push"]
    if major_version < FIRST_VERSION_WITHOUT_GENERATE_ON_PUSH:
        command.append("--skip-generate")
    return command


def prisma_environment(base: Mapping[str, str], database_url: str) -> dict[str, str]:
    """The environment Prisma runs with: the caller's, with `DATABASE_URL` the
    migrator's URL acting as `naap_owner`, and no other connection variable that
    could take precedence (`DIRECT_URL` is pointed at the same URL)."""
    environment = _without_database_url(base)
    url = prisma_url(database_url)
    environment["DATABASE_URL"] = url
    environment["DIRECT_URL"] = url
    return environment


def _without_database_url(base: Mapping[str, str]) -> dict[str, str]:
    dropped = {
        "DATABASE_URL",
        "DIRECT_URL",
        "NAAPDB_DATABASE_SECRET_ID",
        "NAAPDB_PUSH_KEY",
        "PGPASSWORD",
    }
    return {key: value for key, value in base.items() if key not in dropped}

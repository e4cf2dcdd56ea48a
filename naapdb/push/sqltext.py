"""Where a migration's statements begin and end, and the statements no
file may hold (transaction control, role changes), read from its text with
comments, literals and dollar-quoted bodies skipped."""

from __future__ import annotations

import re
from collections.abc import Sequence

_SQL_SKIP = re.compile(
    r"""
    --[^\n]*                                  # line comment
  | /\*(?:[^*]|\*(?!/))*\*/                   # block comment (not nested)
  | '(?:[^']|'')*'                            # string
  | "(?:[^"]|"")*"                            # quoted identifier
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)  # dollar quote opening
    """,
    re.VERBOSE,
)
_WORD = re.compile(r"[A-Za-z_]+")
_ATOMIC_BODY = re.compile(r"\bBEGIN\s+ATOMIC\b", re.IGNORECASE)
# Statements that would end the push's transaction.
_TRANSACTION_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT"})


def statements(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each statement of `text`, split at the semicolons
    that end one: those in comments, literals, dollar-quoted bodies and
    `BEGIN ATOMIC ... END` function bodies do not."""
    return _statements_in(_blank_out(text))


def _statements_in(code: str) -> list[tuple[int, int]]:
    """`statements` of text whose comments and literals are already blanked out."""
    found: list[tuple[int, int]] = []
    start, atomic = 0, False
    for match in re.finditer(";", code):
        piece = code[start : match.start()]
        if not atomic and _ATOMIC_BODY.search(piece):
            atomic = True
        if atomic:
            # The body's statements end with `;`; the body itself with `END;`.
            since = code[code.rfind(";", 0, match.start()) + 1 : match.start()]
            if [word.upper() for word in _WORD.findall(since)[:1]] != ["END"]:
                continue
            atomic = False
        if piece.strip():
            found.append((start + len(piece) - len(piece.lstrip()), match.start()))
        start = match.end()
    tail = code[start:]
    if tail.strip():
        found.append((start + len(tail) - len(tail.lstrip()), len(code)))
    return found


def forbidden_statement(text: str) -> tuple[int, str] | None:
    """The first statement that would escape the push's transaction (COMMIT,
    BEGIN, ...) or its role (SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION),
    as (line, statement keywords), or None. Comments, strings, quoted
    identifiers and dollar-quoted bodies are skipped, and so is a
    `BEGIN ATOMIC ... END` function body."""
    code = _blank_out(text)
    for start, end in _statements_in(code):
        words = [word.upper() for word in _WORD.findall(code[start:end])[:4]]
        found = _forbidden(words)
        if found:
            return text.count("\n", 0, start) + 1, found
    return None


def _forbidden(words: Sequence[str]) -> str | None:
    if not words:
        return None
    if words[0] in _TRANSACTION_CONTROL:
        return words[0]
    if words[0] in ("SET", "RESET"):
        rest = list(words[1:])
        if rest[:1] in (["SESSION"], ["LOCAL"]):
            rest = rest[1:]
        if rest[:1] in (["ROLE"], ["AUTHORIZATION"]) or (
            words[0] == "RESET" and rest[:1] == ["ALL"]
        ):
            return " ".join(words[: len(words) - len(rest) + 1])
    return None


def _blank_out(text: str) -> str:
    """`text` with comments, literals and dollar-quoted bodies replaced by
    spaces (newlines kept), so offsets and line numbers still match."""
    out: list[str] = []
    position = 0
    while True:
        match = _SQL_SKIP.search(text, position)
        if match is None:
            out.append(text[position:])
            return "".join(out)
        out.append(text[position : match.start()])
        end = match.end()
        if match.group("dollar"):
            closing = text.find(match.group("dollar"), end)
            end = len(text) if closing < 0 else closing + len(match.group("dollar"))
        out.append(re.sub(r"[^\n]", " ", text[match.start() : end]))
        position = end

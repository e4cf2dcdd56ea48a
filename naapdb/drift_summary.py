"""The short summary `verify` prints before the details when the database
lacks what `pulumi up` creates: on a fresh database every role, membership,
grant and default privilege is missing, and a newcomer needs the count by
kind and the one command that creates them, not 150 lines first."""

from __future__ import annotations

from collections import Counter

from naapdb.verify.model import KINDS, MISSING_ROLE, MISSING_SCHEMA, Difference, Report

# Kinds whose summary line names the first few objects.
NAMED_KINDS = {MISSING_SCHEMA: "schema", MISSING_ROLE: "role"}
NAMES_SHOWN = 3


def lacks_created_objects(report: Report) -> bool:
    """Whether `pulumi up` has not (fully) run here: a schema or role of the
    plan is missing."""
    return any(difference.kind in NAMED_KINDS for difference in report.differences)


def summary_lines(report: Report, stack: str) -> list[str]:
    """The summary block: one line per kind of difference, with its count
    (and the first names of missing schemas and roles), then the command
    that creates what is missing. Empty when nothing `pulumi up` creates is
    missing: then each difference, with its fix, is short enough to read."""
    if not lacks_created_objects(report):
        return []
    count = len(report.differences)
    lines = [
        f"summary: {count} difference{'s' if count != 1 else ''}; the database lacks what "
        f"`pulumi up --stack {stack}` creates"
    ]
    by_kind = Counter(difference.kind for difference in report.differences)
    rank = {kind: index for index, kind in enumerate(KINDS)}
    for kind, number in sorted(by_kind.items(), key=lambda item: rank.get(item[0], len(rank))):
        lines.append(f"- {kind.replace('-', ' ')}: {number}{_names(report, kind)}")
    lines.append(
        f"create what is missing: `pulumi up --stack {stack}` (or have a superuser run "
        f"`bin/naapdb plan --stack {stack} --format sql`, which sets no passwords)"
    )
    lines.append("details:")
    return lines


def _names(report: Report, kind: str) -> str:
    if kind not in NAMED_KINDS:
        return ""
    names = [_name(difference) for difference in report.differences if difference.kind == kind]
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f" ({shown}{f' and {more} more' if more > 0 else ''})"


def _name(difference: Difference) -> str:
    return (difference.role if difference.kind == MISSING_ROLE else difference.schema) or "?"

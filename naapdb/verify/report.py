"""The report: `verify`'s differences as text, JSON or a psql script."""

from __future__ import annotations

import json
from typing import Any

from naapdb.verify.model import DATABASE_GROUP, ROLES_GROUP, Group, Report

# --- output -----------------------------------------------------------------


def group_title(group: Group, database: str) -> str:
    if group == ROLES_GROUP:
        return "roles"
    if group == DATABASE_GROUP:
        return f"database {database}"
    return f"schema {group.schema}"


def report_to_text(report: Report) -> str:
    """One line per difference under a header per group, each with its fix."""
    lines: list[str] = []
    current: Group | None = None
    for difference in report.differences:
        if difference.group != current:
            current = difference.group
            lines.append(group_title(current, report.database))
        label = difference.kind.replace("-", " ")
        lines.append(f"  {label}: {difference.message}; fix: {difference.fix}")
    return "".join(line + "\n" for line in lines)


JSON_FORMAT_VERSION = 1


def report_to_dict(report: Report, stack: str) -> dict[str, Any]:
    return {
        "format_version": JSON_FORMAT_VERSION,
        "stack": stack,
        "database": report.database,
        "drift": report.drift,
        "queries": report.queries,
        "differences": [
            {
                "kind": difference.kind,
                "scope": difference.scope,
                "group": group_title(difference.group, report.database),
                "schema": difference.schema,
                "role": difference.role,
                "privileges": list(difference.privileges),
                "message": difference.message,
                "fix": difference.fix,
            }
            for difference in report.differences
        ],
    }


def report_to_json(report: Report, stack: str) -> str:
    return json.dumps(report_to_dict(report, stack), indent=2) + "\n"


# The order fixes run in as one script: what others depend on first (roles,
# schemas, owners), then memberships, then privileges; a schema outside the
# catalogue is a person's decision (it holds data) and is never dropped.
SQL_ORDER = (
    "missing-role",
    "role-attribute",
    "role-limit",
    "missing-schema",
    "schema-owner",
    "object-owner",
    "missing-membership",
    "membership-option",
    "extra-membership",
    "security-definer",
    "event-trigger",
    "missing-grant",
    "extra-grant",
    "missing-default-privilege",
    "extra-default-privilege",
    "ledger-row",
    "connection-budget",
)
NOT_RUN = frozenset({"extra-schema"})


def report_to_sql(report: Report, stack: str) -> str:
    """The fixes as one psql script for the server's admin, owners first,
    in one transaction that stops at the first error; what is a person's
    decision (dropping a schema) is listed as a comment, not run."""
    rank = {kind: index for index, kind in enumerate(SQL_ORDER)}
    ordered = sorted(
        (d for d in report.differences if d.kind not in NOT_RUN),
        key=lambda d: rank.get(d.kind, len(rank)),
    )
    lines = [
        f"-- naap-db verify --stack {stack}: {len(report.differences)} differences from the plan",
        "-- Run as the server's admin: psql -v ON_ERROR_STOP=1 -f fixes.sql",
        "\\set ON_ERROR_STOP on",
        "BEGIN;",
    ]
    for difference in ordered:
        lines.append(f"-- {difference.kind}: {difference.message}")
        lines.append(difference.fix)
    for difference in report.differences:
        if difference.kind in NOT_RUN:
            lines.append(f"-- not run ({difference.kind}, a person's decision): {difference.fix}")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"

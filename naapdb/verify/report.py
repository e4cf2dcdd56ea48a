"""The report: `verify`'s differences as text, JSON or a psql script."""

from __future__ import annotations

import json
from typing import Any

from naapdb.verify.compare import DATABASE_GROUP, ROLES_GROUP, Group, Report

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

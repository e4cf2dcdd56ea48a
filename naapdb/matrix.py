"""The access matrix (`plan --format matrix|markdown`): login identities down,
schemas across, `own` / `rw` / `ro` / `·` in the cells.

How it stays readable at 100 plugins: while every schema name fits across
the page as a column header, the headers are the names. Past that, each
schema gets a number, a legend lists number, schema and plugin once, and
the columns are cut into blocks that fit the width (text: 100 characters;
markdown: 20 columns a table), each block repeating the login column. A
login's row is then found by name in every block, and a column by number.
"""

from __future__ import annotations

from collections.abc import Sequence

from naapdb.plan import AccessPlan
from naapdb.rights import Level, Rights, rights_of

TEXT_WIDTH = 100
MARKDOWN_COLUMNS = 20
LEGEND = "own: owner (creates and alters every object), rw: read-write, ro: read-only, ·: nothing"


def matrix_text(plan: AccessPlan, width: int = TEXT_WIDTH) -> str:
    """The matrix as plain text, at most `width` characters a line (a login
    name longer than the page is the only thing that can exceed it)."""
    rights = rights_of(plan)
    label_width = max(len(identity) for identity in rights.identities)
    named = _fits(rights.schemas, label_width, width)
    headers = list(rights.schemas) if named else [str(i + 1) for i in range(len(rights.schemas))]
    lines = [_title(plan, rights), LEGEND, ""]
    if not named:
        lines += _legend_lines(plan)
        lines.append("")
    cell_width = max(3, *(len(h) for h in headers)) if named else max(3, len(headers[-1]))
    per_block = max(1, (width - label_width) // (cell_width + 2))
    for start in range(0, len(headers), per_block):
        block = range(start, min(start + per_block, len(headers)))
        if not named and len(headers) > per_block:
            lines.append(f"schemas {block.start + 1}-{block.stop} of {len(headers)}")
        header = " " * label_width + "".join(f"  {headers[i]:<{cell_width}}" for i in block)
        lines.append(header.rstrip())
        for identity in rights.identities:
            cells = "".join(
                f"  {rights.level(identity, rights.schemas[i]).label:<{cell_width}}" for i in block
            )
            lines.append(f"{identity:<{label_width}}{cells}".rstrip())
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def matrix_markdown(plan: AccessPlan, columns: int = MARKDOWN_COLUMNS) -> str:
    """The matrix as GitHub markdown tables: one table while the schemas fit
    in `columns`, else numbered columns in tables of `columns` with a legend."""
    rights = rights_of(plan)
    named = len(rights.schemas) <= columns
    lines = [f"**{_title(plan, rights)}**", "", LEGEND, ""]
    if not named:
        lines += ["<details><summary>schema numbers</summary>", ""]
        lines += ["| # | schema | plugin |", "| ---: | --- | --- |"]
        for index, schema in enumerate(plan.schemas, start=1):
            lines.append(f"| {index} | `{schema.name}` | {schema.plugin or 'platform'} |")
        lines += ["", "</details>", ""]
    for start in range(0, len(rights.schemas), columns):
        block = range(start, min(start + columns, len(rights.schemas)))
        headers = [f"`{rights.schemas[i]}`" if named else str(i + 1) for i in block]
        lines.append("| login | " + " | ".join(headers) + " |")
        lines.append("| --- | " + " | ".join(":---:" for _ in block) + " |")
        for identity in rights.identities:
            cells = " | ".join(_markdown_cell(rights, identity, rights.schemas[i]) for i in block)
            lines.append(f"| `{identity}` | {cells} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown_cell(rights: Rights, identity: str, schema: str) -> str:
    level = rights.level(identity, schema)
    return level.label if level is Level.NONE else f"**{level.label}**"


def _title(plan: AccessPlan, rights: Rights) -> str:
    plugins = sum(1 for schema in plan.schemas if schema.plugin)
    return (
        f"access matrix of database {plan.database}: {len(rights.identities)} logins, "
        f"{len(rights.schemas)} schemas ({plugins} plugins)"
    )


def _fits(schemas: Sequence[str], label_width: int, width: int) -> bool:
    return label_width + sum(2 + max(3, len(schema)) for schema in schemas) <= width


def _legend_lines(plan: AccessPlan) -> list[str]:
    digits = len(str(len(plan.schemas)))
    name_width = max(len(schema.name) for schema in plan.schemas)
    return [
        f"{index:>{digits}}  {schema.name:<{name_width}}  {schema.plugin or '(platform)'}"
        for index, schema in enumerate(plan.schemas, start=1)
    ]

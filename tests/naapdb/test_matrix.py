"""`plan --format matrix|markdown`: logins down, schemas across, read back
from the printed output and compared with the plan's memberships; the
committed stacks and catalogues of 1, 8 and 100 plugins."""

from __future__ import annotations

import re

import pytest

from naapdb.__main__ import main
from naapdb.catalog import parse_catalog
from naapdb.matrix import TEXT_WIDTH, matrix_markdown, matrix_text
from naapdb.plan import AccessPlan, Rotation, build_plan
from naapdb.rights import Level, rights_of


def synthetic_plan(plugins: int, rotation: Rotation = Rotation.SINGLE) -> AccessPlan:
    raw = [{"plugin": "base", "schema": "public"}] + [
        {"plugin": f"p{i}", "schema": f"plugin_p{i}", "reads": ["public"]}
        for i in range(1, plugins)
    ]
    return build_plan(parse_catalog(raw), rotation)


def matrix_logins(plan: AccessPlan) -> tuple[str, ...]:
    """The identities, then each schema's push login."""
    return (*plan.identities, *(s.migrator for s in plan.schemas if s.migrator))


def read_text_matrix(text: str, plan: AccessPlan) -> dict[tuple[str, str], str]:
    """(login, schema) -> cell, from the printed blocks (headers by name or number)."""
    names = [schema.name for schema in plan.schemas]
    logins = set(matrix_logins(plan))
    cells: dict[tuple[str, str], str] = {}
    header: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words and line.startswith(" ") and all(w in names or w.isdigit() for w in words):
            header = [w if w in names else names[int(w) - 1] for w in words]
        elif words and words[0] in logins and header:
            assert len(words) == len(header) + 1, line
            for schema, cell in zip(header, words[1:], strict=True):
                cells[(words[0], schema)] = cell
    return cells


def expected_cells(plan: AccessPlan) -> dict[tuple[str, str], str]:
    """Straight from the memberships, not through naapdb.rights."""
    rights: dict[tuple[str, str], str] = {}
    groups: dict[str, set[str]] = {}
    for membership in plan.memberships:
        groups.setdefault(membership.member, set()).add(membership.group)
    # a push login reaches its owner's groups too (the schemas its plugin reads)
    reached = [
        (member, inner)
        for member, outer in groups.items()
        for group in outer
        for inner in {group} | groups.get(group, set())
    ]
    for member, group in reached:
        for schema in plan.schemas:
            if group == schema.owner:
                rights[(member, schema.name)] = "own"
            elif group == schema.rw_role:
                rights[(member, schema.name)] = "rw"
            elif group == schema.ro_role:
                rights.setdefault((member, schema.name), "ro")
    return {
        (login, schema.name): rights.get((login, schema.name), "·")
        for login in matrix_logins(plan)
        for schema in plan.schemas
    }


@pytest.mark.parametrize("size", [1, 8, 100])
@pytest.mark.parametrize("rotation", list(Rotation))
def test_text_matrix_holds_every_cell_within_the_width(size: int, rotation: Rotation) -> None:
    plan = synthetic_plan(size, rotation)
    text = matrix_text(plan)
    assert read_text_matrix(text, plan) == expected_cells(plan)
    assert max(len(line) for line in text.splitlines()) <= TEXT_WIDTH
    if size == 100:
        assert "101  naap_meta" in text  # the legend numbers every schema
        assert re.search(r"^schemas 1-\d+ of 101$", text, re.M)


def test_a_small_catalogue_has_the_schema_names_as_headers() -> None:
    plan = synthetic_plan(1)
    lines = matrix_text(plan).splitlines()
    assert lines[3].split() == ["public", "naap_meta"]
    assert lines[4].split() == ["naap_migrator", "·", "own"]
    assert lines[5].split() == ["naap_base", "rw", "·"]
    # a schema's push login owns its schema and nothing else
    assert lines[-1].split() == ["public_migrator", "own", "·"]


@pytest.mark.parametrize("size", [1, 8, 100])
def test_markdown_matrix_holds_every_cell(size: int) -> None:
    plan = synthetic_plan(size)
    text = matrix_markdown(plan)
    names = [schema.name for schema in plan.schemas]
    cells: dict[tuple[str, str], str] = {}
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("| login |"):
            header = [h.strip().strip("`") for h in line.strip("|").split("|")[1:]]
            header = [names[int(h) - 1] if h.isdigit() else h for h in header]
        elif line.startswith("| `") and not line.startswith("| `naap_meta"):
            row = [c.strip().strip("`*") for c in line.strip("|").split("|")]
            assert len(row) == len(header) + 1
            cells.update({(row[0], s): c for s, c in zip(header, row[1:], strict=True)})
    assert cells == expected_cells(plan)
    tables = text.count("| login |")
    assert tables == (1 if len(names) <= 20 else -(-len(names) // 20))


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize("output_format", ["matrix", "markdown"])
def test_committed_stacks(
    stack: str, output_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--stack", stack, "--format", output_format]) == 0
    out = capsys.readouterr().out
    assert "naap_community" in out and "plugin_developer_api" in out
    assert "naap_community_a" not in out  # identities, not the alternating logins


def test_rights_follow_memberships_transitively() -> None:
    plan = synthetic_plan(3, Rotation.ALTERNATING)
    rights = rights_of(plan)
    assert rights.level("naap_p1", "plugin_p1") is Level.RW
    assert rights.level("naap_p1", "public") is Level.RO
    assert rights.level("naap_p1", "plugin_p2") is Level.NONE
    assert rights.level("naap_migrator", "naap_meta") is Level.OWN
    assert rights.own_schema["naap_p2"] == "plugin_p2"

"""The peer of the engine benchmark (bench/hcl.py, bench/peer.py): the HCL
declares the same access layer as the plan, and OpenTofu with
terraform-provider-postgresql (scripts/build-peer.sh) applies it to a real
server where `verify` then finds nothing to report, so bench/engine.py
compares Pulumi with the peer on the same work."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from bench.hcl import plan_to_hcl
from bench.peer import make_tofu, missing_peer_reason
from naapdb.plan import AccessPlan
from naapdb.stackfiles import load_stack_settings
from naapdb.verify import verify
from tests.pgserver import PgServer

RESOURCE = re.compile(r'^resource "(\w+)" "(\w+)" \{$', re.MULTILINE)
DEPENDS_ON = re.compile(r"^  depends_on = \[(.*)\]$", re.MULTILINE)


def _plan(stack: str) -> AccessPlan:
    return load_stack_settings(stack, None).plan


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_plan_item_is_one_resource(stack: str) -> None:
    plan = _plan(stack)
    text = plan_to_hcl(plan, [role.name for role in plan.first_logins])
    kinds = [kind for kind, _ in RESOURCE.findall(text)]
    assert kinds.count("postgresql_role") == len(plan.roles)
    assert kinds.count("postgresql_schema") == len(plan.schemas)
    assert kinds.count("postgresql_grant") == len(plan.grants) + len(plan.revocations)
    assert kinds.count("postgresql_default_privileges") == len(plan.default_privileges)
    names = [name for _, name in RESOURCE.findall(text)]
    assert len(set(zip(kinds, names, strict=True))) == len(kinds)


def test_every_dependency_is_declared_and_logins_get_their_password() -> None:
    plan = _plan("prod")
    logins = {role.name for role in plan.first_logins}
    text = plan_to_hcl(plan, sorted(logins))
    declared = {f"{kind}.{name}" for kind, name in RESOURCE.findall(text)}
    for needs in DEPENDS_ON.findall(text):
        assert set(needs.split(", ")) <= declared
    assert set(re.findall(r'var\.passwords\["(\w+)"\]', text)) == logins


@pytest.mark.db
def test_opentofu_applies_the_plan_and_verify_finds_no_drift(
    fresh_pg: PgServer, tmp_path: Path
) -> None:
    reason = missing_peer_reason()
    if reason is not None:
        if os.environ.get("NAAPDB_REQUIRE_PEER"):
            pytest.fail(reason)
        pytest.skip(reason)
    plan = _plan("dev")
    tofu = make_tofu(tmp_path / "tofu", fresh_pg, plan)
    tofu.apply()
    with fresh_pg.connect() as connection:
        report = verify(connection, plan)
    assert report.differences == ()
    # And the peer reads back what it applied: no change planned.
    tofu.plan_no_changes()


@pytest.mark.bench
def test_the_engine_benchmark_runs_all_three_tools(tmp_path: Path) -> None:
    """bench/engine.py at its smallest, as a user runs it: a row per tool
    with the four operations, and the connection budget fitting the server."""
    import json
    import subprocess
    import sys

    from tests.engine import missing_engine_reason

    for reason in (missing_engine_reason(), missing_peer_reason()):
        if reason is not None:
            if os.environ.get("NAAPDB_REQUIRE_ENGINE") or os.environ.get("NAAPDB_REQUIRE_PEER"):
                pytest.fail(reason)
            pytest.skip(reason)
    figures = tmp_path / "engine.json"
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "bench" / "engine.py"), "--sizes", "2", "--json", str(figures)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(figures.read_text())
    assert [row["tool"] for row in rows] == ["pulumi", "tofu", "psql"]
    for row in rows:
        assert row["resources"] > 0
        for operation in ("up", "add", "preview", "refresh"):
            assert row[operation] > 0 and row[f"{operation} cpu"] >= 0
    assert "| 2 | add one plugin |" in result.stdout

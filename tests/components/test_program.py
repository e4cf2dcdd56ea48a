"""The whole program, for every committed stack, under mocks."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from naapdb import tlsprobe
from tests.harness import Run

EXTERNAL = {
    "naap-db:server": {
        "kind": "external",
        "host": "db.internal",
        "port": 5432,
        "sslmode": "require",
    },
    "naap-db:adminPassword": {"secure": "v1:placeholder"},
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_committed_stacks_run(run_stack: Any, stack: str) -> None:
    run: Run = run_stack(stack)
    assert run.one("naap:database:NaapDatabase").parent.endswith(
        "pulumi:pulumi:Stack::naap-db-" + stack
    )
    assert run.of_type("pulumi:providers:postgresql")
    assert set(run.outputs["schemas"]) >= {"public", "plugin_community", "naap_meta"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_child_has_a_parent_and_a_stable_name(run_stack: Any, stack: str) -> None:
    run: Run = run_stack(stack)
    names = [r.urn for r in run.resources]
    assert len(names) == len(set(names))
    for resource in run.resources:
        if resource.type != "naap:database:NaapDatabase":
            assert resource.parent in run.urns, f"{resource.name} is not inside a component"


def test_bad_config_registers_nothing(run_stack: Any) -> None:
    run: Run = run_stack(
        "dev",
        {"naap-db:plugins": [{"plugin": "base", "schema": "Public"}]},
        raise_errors=False,
    )
    assert run.error is not None
    assert str(run.error).startswith("naap-db:plugins[0].schema:")
    assert run.resources == []


def test_overrides_reach_the_program(run_stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tlsprobe, "offers_tls", lambda host, port, timeout: True)
    catalogue = [
        {"plugin": "base", "schema": "public"},
        {"plugin": "shop", "schema": "plugin_shop"},
    ]
    run: Run = run_stack("dev", {**EXTERNAL, "naap-db:plugins": catalogue})
    assert run.outputs["schemas"] == ["public", "plugin_shop", "naap_meta"]
    assert run.outputs["host"] == "db.internal"


# --- what one more plugin costs --------------------------------------------------

# Issue 8's target was 20; the schema boundary (issue 20) costs each plugin
# three more: its schema's owner, its push login and the revocation of
# PUBLIC's EXECUTE on what that owner creates.
MAX_RESOURCES_PER_PLUGIN = 21
GROWTH_SIZES = (10, 20)


# A synthetic catalogue of hundreds of plugins does not fit the committed
# stacks' servers (the connection budget, naapdb.limits): these runs count
# resources, so the ceiling is PostgreSQL's largest.
ROOMY_LIMITS = {"maxConnections": 262_143}


def synthetic_config(size: int) -> dict[str, Any]:
    return {"naap-db:plugins": synthetic_catalogue(size), "naap-db:limits": ROOMY_LIMITS}


def synthetic_catalogue(size: int) -> list[dict[str, Any]]:
    """`public` and size - 1 plugins, each reading `public` (a read costs no
    resource: it is an entry of the plugin identity's `roles`)."""
    entries: list[dict[str, Any]] = [{"plugin": "base", "schema": "public"}]
    entries += [
        {"plugin": f"p{index:03d}", "schema": f"plugin_p{index:03d}", "reads": ["public"]}
        for index in range(1, size)
    ]
    return entries


@pytest.mark.parametrize(("stack", "expected"), [("dev", 16), ("prod", 21)])
def test_resources_per_plugin_is_at_most_21(
    run_stack: Any, lambda_zip: Path, stack: str, expected: int
) -> None:
    """Every registered resource (components included) of the whole program,
    counted for two synthetic catalogues: the growth per plugin is what one
    more plugin costs. dev (single rotation): SchemaAccess, Schema, the
    schema's `_owner`, `_rw`, `_ro`, its push login `_migrator` and the
    identity's Role, USAGE x2, 6 DefaultPrivileges (5 for the groups, 1
    revoking PUBLIC's EXECUTE on what the owner creates), 1 RandomPassword
    = 16 (the identity may connect as a member of naap_connect, an entry of
    its `roles`, not a resource; the push login's password derives from the
    stack's one push key). prod (alternating): the same with the identity's
    `_a`/`_b` Roles (one password, for `_a`), plus its Secrets Manager
    Secret, SecretVersion and SecretRotation = 21."""
    small, large = GROWTH_SIZES
    runs: dict[int, Run] = {size: run_stack(stack, synthetic_config(size)) for size in GROWTH_SIZES}
    counts = {size: len(run.resources) for size, run in runs.items()}
    growth = counts[large] - counts[small]
    per_plugin = growth / (large - small)
    by_type = Counter(r.type for r in runs[large].resources)
    by_type.subtract(Counter(r.type for r in runs[small].resources))
    print(
        f"\n{stack}: {counts[small]} resources at {small} plugins, {counts[large]} at {large}: "
        f"{per_plugin:g} per plugin {dict(+by_type)}"
    )
    assert growth % (large - small) == 0  # the same cost for every plugin
    assert per_plugin <= MAX_RESOURCES_PER_PLUGIN
    assert per_plugin == expected
    assert "postgresql:index/grantRole:GrantRole" not in by_type


# --- what the SDK does per dependency ---------------------------------------------

WALK_SIZES = (10, 20, 30)


def cycle_check_walk(run: Run) -> int:
    """How many resources the Pulumi SDK's cycle check walks for this
    program: for every dependency a resource is given, everything that
    dependency waits for (`pulumi/runtime/resource_cycle_breaker.py` walks
    it afresh for each one). Read off the registered dependencies, so the
    figure does not depend on the order the SDK happened to resolve them."""
    closure: dict[str, int] = {}

    def size(urn: str) -> int:
        if urn not in closure:
            closure[urn] = 1 + len(run.waits_for(run.by_urn(urn)))
        return closure[urn]

    return sum(size(urn) for resource in run.resources for urn in resource.dependencies)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_sdks_dependency_cycle_check_grows_linearly(
    run_stack: Any, lambda_zip: Path, stack: str
) -> None:
    """A resource many others wait for that itself waits for something per
    plugin makes the walk quadratic in the catalogue: the rotation policy
    once listed every secret's ARN and every schedule waited for it, and
    1,000 plugins took 5.8 times as long as 200. Every 10 plugins more must
    add the same walk."""
    counts = {
        size: cycle_check_walk(run_stack(stack, synthetic_config(size))) for size in WALK_SIZES
    }
    steps = [later - earlier for earlier, later in itertools.pairwise(counts.values())]
    print(f"\n{stack}: resources the SDK's cycle check walks: {counts}, per 10 plugins {steps}")
    assert len(set(steps)) == 1, counts


@pytest.mark.parametrize(
    ("before", "after", "key"),
    [
        ("\nconfig:\n", "\nconfg:\n", "confg"),
        ("  naap-db:limits:", "  naapdb:limits:", "naapdb:limits"),
    ],
)
def test_the_program_refuses_what_the_engine_drops_from_the_stack_file(
    run_stack: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    before: str,
    after: str,
    key: str,
) -> None:
    """The engine never passes an unknown top-level key or a near-miss
    namespace on, so the program reads the stack file itself: `pulumi
    preview` stops with naapdb plan's line instead of running on defaults."""
    root = Path(__file__).resolve().parents[2]
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((root / name).read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace(before, after))
    monkeypatch.chdir(tmp_path)
    run: Run = run_stack("dev", preview=True, raise_errors=False)
    assert str(run.error).startswith(f"{stack_file}: {key}: ")
    assert run.resources == []

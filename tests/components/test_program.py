"""The whole program, for every committed stack, under mocks."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_overrides_reach_the_program(run_stack: Any) -> None:
    catalogue = [
        {"plugin": "base", "schema": "public"},
        {"plugin": "shop", "schema": "plugin_shop"},
    ]
    run: Run = run_stack("dev", {**EXTERNAL, "naap-db:plugins": catalogue})
    assert run.outputs["schemas"] == ["public", "plugin_shop", "naap_meta"]
    assert run.outputs["host"] == "db.internal"

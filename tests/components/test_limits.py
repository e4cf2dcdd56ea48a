"""Limits in the Pulumi program: every login Role carries its plan limits as
pulumi-postgresql's `connection_limit`, `statement_timeout` and
`idle_in_transaction_session_timeout` (milliseconds); NOLOGIN roles carry
no setting and no limit (-1); the admin provider's pool is the budget's
admin share; a connection ceiling that is not PostgreSQL's default reaches
the container; a budget that does not fit stops the program."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Run

ROLE = "postgresql:index/role:Role"
PROVIDER = "pulumi:providers:postgresql"
CONTAINER = "docker:index/container:Container"
STACKS = ("dev", "prod")


@pytest.fixture(scope="module")
def runs(lambda_zip: Path) -> dict[str, Run]:
    return {
        stack: harness.run_program(stack, harness.stack_overrides(stack, lambda_zip))
        for stack in STACKS
    }


@pytest.mark.parametrize("stack", STACKS)
def test_each_role_carries_its_plan_limits(runs: dict[str, Run], stack: str) -> None:
    plan = load_stack_settings(stack, ROOT).plan
    roles = {resource.inputs["name"]: resource for resource in runs[stack].of_type(ROLE)}
    assert set(roles) == {role.name for role in plan.roles}
    for role in plan.roles:
        inputs = roles[role.name].inputs
        if role.limits is None:
            assert inputs["connectionLimit"] == -1, role.name
            assert "statementTimeout" not in inputs, role.name
            assert "idleInTransactionSessionTimeout" not in inputs, role.name
        else:
            assert role.login
            assert inputs["connectionLimit"] == role.limits.connections, role.name
            assert inputs["statementTimeout"] == role.limits.statement_timeout_ms, role.name
            assert (
                inputs["idleInTransactionSessionTimeout"]
                == role.limits.idle_in_transaction_timeout_ms
            ), role.name


def test_committed_values_reach_the_roles(runs: dict[str, Run]) -> None:
    dev = {r.inputs["name"]: r.inputs for r in runs["dev"].of_type(ROLE)}
    prod = {r.inputs["name"]: r.inputs for r in runs["prod"].of_type(ROLE)}
    assert (dev["naap_wallet"]["connectionLimit"], dev["naap_wallet"]["statementTimeout"]) == (
        5,
        30_000,
    )
    assert dev["naap_readonly"]["statementTimeout"] == 300_000
    assert dev["naap_migrator"]["idleInTransactionSessionTimeout"] == 300_000
    # alternating: both logins carry the identity's limit, the identity none
    assert prod["naap_app_a"]["connectionLimit"] == prod["naap_app_b"]["connectionLimit"] == 100
    assert prod["naap_app"]["connectionLimit"] == -1
    assert "statementTimeout" not in prod["naap_app"]


def test_a_catalogue_entry_overrides_its_plugin(lambda_zip: Path) -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    catalogue = [
        {**entry, "limits": {"connections": 7, "idleInTransactionTimeout": "15s"}}
        if entry["plugin"] == "gateway"
        else entry
        for entry in project["config"]["naap-db:plugins"]["value"]
    ]
    run = harness.run_program("dev", {"naap-db:plugins": catalogue})
    roles = {r.inputs["name"]: r.inputs for r in run.of_type(ROLE)}
    assert roles["naap_gateway"]["connectionLimit"] == 7
    assert roles["naap_gateway"]["idleInTransactionSessionTimeout"] == 15_000
    assert roles["naap_gateway"]["statementTimeout"] == 30_000
    assert roles["naap_wallet"]["connectionLimit"] == 5


@pytest.mark.parametrize("stack", STACKS)
def test_the_admin_pool_is_the_budgets_admin_share(runs: dict[str, Run], stack: str) -> None:
    settings = load_stack_settings(stack, ROOT)
    provider = runs[stack].one(PROVIDER)
    assert int(provider.inputs["maxConnections"]) == settings.limits.admin_connections == 20


def test_the_container_runs_with_the_ceiling_it_was_budgeted_for(runs: dict[str, Run]) -> None:
    # dev's own ceiling (Pulumi.dev.yaml): room for the README's example plugin and more
    assert runs["dev"].one(CONTAINER).inputs["command"] == ["postgres", "-c", "max_connections=200"]
    run = harness.run_program("dev", {"naap-db:limits": {}})
    assert "command" not in run.one(CONTAINER).inputs  # PostgreSQL's default, 100
    run = harness.run_program(
        "dev",
        {"naap-db:limits": {"maxConnections": 300, "plugins": {"connections": 20}}},
    )
    assert run.one(CONTAINER).inputs["command"] == ["postgres", "-c", "max_connections=300"]


def test_a_budget_that_does_not_fit_stops_the_program() -> None:
    run = harness.run_program(
        "dev", {"naap-db:limits": {"plugins": {"connections": 30}}}, raise_errors=False
    )
    assert run.resources == []
    assert str(run.error).startswith(
        "naap-db:limits: the connection budget does not fit: 295 of 97"
    )

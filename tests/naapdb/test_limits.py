"""Limits and the connection budget (`naapdb.limits`): what the settings
accept, what they refuse (one line naming the key, exit 2 on the command
line, nothing printed to stdout), how a plugin's own `limits:` and the
rotation shape the plan, and the server ceilings the budget is held to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb.errors import ConfigError
from naapdb.limits import (
    Limits,
    instance_memory_gib,
    parse_duration,
    rds_default_max_connections,
)
from naapdb.plan import Rotation
from naapdb.settings import StackSettings, parse_settings
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import find_project_root, load_stack_settings, read_raw_config

ROOT = find_project_root()


def raw_of(stack: str, **changes: Any) -> dict[str, Any]:
    raw = read_raw_config(ROOT, stack)
    raw.update(changes)
    return raw


def with_entry_limits(stack: str, plugin: str, limits: Any, **changes: Any) -> dict[str, Any]:
    raw = raw_of(stack, **changes)
    raw["plugins"] = [
        {**entry, "limits": limits} if entry["plugin"] == plugin else entry
        for entry in raw["plugins"]
    ]
    return raw


def refused(stack: str, raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(stack, raw)
    return caught.value


# --- values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "milliseconds"),
    [("500ms", 500), ("30s", 30_000), ("5min", 300_000), ("1h", 3_600_000), ("2d", 172_800_000)],
)
def test_durations(text: str, milliseconds: int) -> None:
    assert parse_duration(text, "k") == milliseconds


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (30, "has no unit"),
        ("30", "has no unit"),
        ("0s", "must be positive"),
        ("-5s", "is not a duration"),
        ("30 sec", "is not a duration"),
        ("30S", "is not a duration"),
        (True, "is not a duration"),
        ("30d", "over PostgreSQL's maximum"),
    ],
)
def test_bad_durations(value: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(value, "naap-db:limits.plugins.statementTimeout")
    assert caught.value.key == "naap-db:limits.plugins.statementTimeout"
    assert says in caught.value.message


def test_the_committed_stacks_fit_their_servers() -> None:
    dev, prod = load_stack_settings("dev", ROOT), load_stack_settings("prod", ROOT)
    assert dev.budget.fits and prod.budget.fits
    assert dev.budget.ceiling.max_connections == 200  # the container's, Pulumi.dev.yaml
    assert prod.budget.ceiling.max_connections == 901  # db.m7g.large


def test_a_plugin_entry_overrides_the_stack_defaults_key_by_key() -> None:
    raw = with_entry_limits("dev", "wallet", {"connections": 12, "statementTimeout": "2min"})
    plan = parse_settings("dev", raw).plan
    assert plan.role("naap_wallet").limits == Limits(12, 120_000, 60_000)
    assert plan.role("naap_community").limits == Limits(5, 30_000, 60_000)


def test_stack_defaults_and_platform_identities() -> None:
    raw = raw_of(
        "dev",
        limits={
            "plugins": {"connections": "4", "idleInTransactionTimeout": "10s"},
            "naap_app": {"statementTimeout": "1min"},
        },
    )
    plan = parse_settings("dev", raw).plan
    assert plan.role("naap_base").limits == Limits(4, 30_000, 10_000)
    assert plan.role("naap_app").limits == Limits(20, 60_000, 60_000)
    assert plan.role("naap_migrator").limits == Limits(2, 1_800_000, 300_000)


def test_alternating_rotation_gives_each_login_the_identity_limits() -> None:
    """The identity is a NOLOGIN group: a limit on it would bind nobody. Each
    login carries it in full (clients use one at a time), and the budget
    counts both, since during a rotation both have open connections."""
    settings = load_stack_settings("prod", ROOT)
    plan = settings.plan
    assert plan.rotation is Rotation.ALTERNATING
    assert plan.role("naap_wallet").limits is None
    assert plan.role("naap_wallet_a").limits == plan.role("naap_wallet_b").limits
    assert plan.role("naap_wallet_a").limits == Limits(20, 30_000, 60_000)
    per_identity = sum(
        plan.role(plan.logins_of(identity)[0]).limits.connections  # type: ignore[union-attr]
        for identity in plan.identities
    )
    assert settings.budget.logins == 2 * per_identity == plan.login_connections


# --- bad input ----------------------------------------------------------------


BAD: dict[str, tuple[dict[str, Any], str, str]] = {
    "zero connections": (
        with_entry_limits("dev", "wallet", {"connections": 0}),
        "naap-db:plugins[2].limits.connections",
        "not a positive whole number",
    ),
    "fractional connections": (
        with_entry_limits("dev", "wallet", {"connections": 2.5}),
        "naap-db:plugins[2].limits.connections",
        "not a positive whole number",
    ),
    "timeout without unit": (
        with_entry_limits("dev", "wallet", {"statementTimeout": 30}),
        "naap-db:plugins[2].limits.statementTimeout",
        "has no unit",
    ),
    "unknown key in an entry": (
        with_entry_limits("dev", "wallet", {"maxConnections": 5}),
        "naap-db:plugins[2].limits.maxConnections",
        "unknown key",
    ),
    "entry limits not a mapping": (
        with_entry_limits("dev", "wallet", 5),
        "naap-db:plugins[2].limits",
        "must be a mapping",
    ),
    "unknown key in the stack": (
        raw_of("dev", limits={"plugin": {"connections": 5}}),
        "naap-db:limits.plugin",
        "unknown key",
    ),
    "unknown key in an identity": (
        raw_of("dev", limits={"naap_app": {"timeout": "1s"}}),
        "naap-db:limits.naap_app.timeout",
        "unknown key",
    ),
    "negative admin": (
        raw_of("dev", limits={"adminConnections": -1}),
        "naap-db:limits.adminConnections",
        "not a positive whole number",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_limits_name_the_key(case: str) -> None:
    raw, key, says = BAD[case]
    error = refused("dev", raw)
    assert (error.key, says in error.message) == (key, True), str(error)


def test_a_budget_that_does_not_fit_names_the_sum_the_ceiling_and_the_key() -> None:
    raw = raw_of("dev", limits={"plugins": {"connections": 10}})
    error = refused("dev", raw)
    assert error.key == "naap-db:limits"
    # 8 x 10 + naap_app 20 + naap_readonly 5 + naap_migrator 2 + admin 20
    assert "127 of 97 connections" in error.message
    assert "max_connections 100" in error.message
    assert "naap-db:limits.plugins.connections" in error.message
    assert "naap-db:limits.maxConnections" in error.message


def test_one_plugin_can_break_the_budget() -> None:
    error = refused("dev", with_entry_limits("dev", "gateway", {"connections": 150}))
    assert error.key == "naap-db:limits" and "232 of 197" in error.message


def test_a_larger_ceiling_lets_it_fit() -> None:
    raw = raw_of("dev", limits={"plugins": {"connections": 10}, "maxConnections": 200})
    assert parse_settings("dev", raw).budget.describe().startswith("127 of 197 connections")


# --- ceilings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_class", "memory", "max_connections"),
    [
        ("db.t4g.micro", 1, 112),
        ("db.t4g.medium", 4, 450),
        ("db.m7g.large", 8, 901),
        ("db.m6i.2xlarge", 32, 3604),
        ("db.r6g.large", 16, 1802),
        ("db.r7g.4xlarge", 128, 5000),  # RDS caps the formula at 5000
    ],
)
def test_rds_default_formula(instance_class: str, memory: int, max_connections: int) -> None:
    assert instance_memory_gib(instance_class) == memory
    assert rds_default_max_connections(memory) == max_connections


def prod_with(**server: Any) -> dict[str, Any]:
    raw = raw_of("prod")
    raw["server"] = {**raw["server"], **server}
    return raw


def test_a_small_instance_class_does_not_fit_prod() -> None:
    error = refused("prod", prod_with(instanceClass="db.t4g.micro"))
    assert error.key == "naap-db:limits"
    assert "564 of 107 connections" in error.message
    assert "naap-db:server.instanceClass" in error.message


def test_an_unknown_instance_class_asks_for_max_connections() -> None:
    error = refused("prod", prod_with(instanceClass="db.x2g.large"))
    assert error.key == "naap-db:limits.maxConnections"
    raw = prod_with(instanceClass="db.x2g.large")
    raw["limits"] = {**raw["limits"], "maxConnections": 2000}
    settings: StackSettings = parse_settings("prod", raw)
    assert settings.budget.ceiling.max_connections == 2000


# --- what plan shows ------------------------------------------------------------


def test_plan_sql_sets_each_login_limit() -> None:
    script = plan_to_sql(load_stack_settings("prod", ROOT).plan)
    assert (
        'ALTER ROLE "naap_wallet_a" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
        "NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 20;"
    ) in script
    assert 'ALTER ROLE "naap_wallet_b" SET statement_timeout = 30000;' in script
    assert 'ALTER ROLE "naap_wallet_b" SET idle_in_transaction_session_timeout = 60000;' in script
    assert "CONNECTION LIMIT -1;" in script  # the NOLOGIN identity and groups
    assert 'ALTER ROLE "naap_wallet" SET' not in script


def run_plan(project: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "naapdb", "plan", "--project", str(project), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_plan_text_and_json_show_limits_and_the_budget() -> None:
    text = run_plan(ROOT, "--stack", "dev")
    assert text.returncode == 0
    rows = {line.split()[0]: line.split()[1:] for line in text.stdout.splitlines() if line}
    assert rows["naap_wallet"] == ["5", "30s", "1min"]
    assert rows["naap_readonly"] == ["5", "5min", "1min"]
    assert "connection budget: 87 of 197 connections" in text.stdout
    document = json.loads(run_plan(ROOT, "--stack", "prod", "--format", "json").stdout)
    assert document["format_version"] == 1
    roles = {role["name"]: role for role in document["roles"]}
    assert roles["naap_app_a"]["limits"] == {
        "connections": 100,
        "statement_timeout_ms": 30_000,
        "idle_in_transaction_timeout_ms": 60_000,
    }
    assert roles["naap_app"]["limits"] is None
    assert document["connection_budget"]["total"] == 564
    assert document["connection_budget"]["max_connections"] == 901


@pytest.mark.parametrize(
    ("stack_change", "key"),
    [
        ({"plugins": {"statementTimeout": "soon"}}, "naap-db:limits.plugins.statementTimeout"),
        ({"plugins": {"connections": 30}}, "naap-db:limits"),
    ],
)
def test_bad_limits_on_the_command_line(
    tmp_path: Path, stack_change: dict[str, Any], key: str
) -> None:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    stack_file = tmp_path / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["naap-db:limits"] = {**document["config"]["naap-db:limits"], **stack_change}
    stack_file.write_text(yaml.safe_dump(document))
    result = run_plan(tmp_path, "--stack", "dev", "--format", "sql")
    assert (result.returncode, result.stdout) == (2, "")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}:"), result.stderr


@pytest.mark.db
def test_verify_reports_a_server_smaller_than_the_budget(fresh_pg: Any) -> None:
    """`maxConnections` is a setting for container and external servers: a
    server with fewer connections than the budget is drift (the suite's
    servers have 200)."""
    from naapdb import verify

    fits = parse_settings("dev", raw_of("dev"))
    too_big = parse_settings(
        "dev", raw_of("dev", limits={"plugins": {"connections": 30}, "maxConnections": 300})
    )
    fresh_pg.execute(plan_to_sql(fits.plan))
    with fresh_pg.connect() as connection:
        assert not verify.verify(connection, fits.plan, fits.budget).differences
        found = verify.verify(connection, too_big.plan, too_big.budget).differences
    budget = [d for d in found if d.kind == verify.CONNECTION_BUDGET]
    assert len(budget) == 1 and budget[0].scope == "database"
    assert budget[0].message.startswith(
        "the server has max_connections 200, 197 of them for the plan's logins and the admin, "
        "but the budget needs 287"
    )
    assert budget[0].fix == "ALTER SYSTEM SET max_connections = 300;"

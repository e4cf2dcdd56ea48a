"""Noisy neighbours on a real server: one plugin floods its connections,
runs a query past its statement timeout and leaves a transaction idle
holding a lock, while another plugin's clients and the schema push keep
working (`tests/limits_load.py`; figures in bench/RESULTS.md, section
`limits`). The limits come from the catalogue, through the settings, the
plan and its SQL, as `pulumi up` would set them."""

from __future__ import annotations

from typing import Any

import pytest

from naapdb.settings import StackSettings, parse_settings
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import read_raw_config
from tests.harness import ROOT
from tests.limits_load import TOO_MANY, create_tables, prepare, run_neighbour_load
from tests.pgserver import PgServer

pytestmark = pytest.mark.db

NOISY_PLUGIN, NOISY_SCHEMA = "wallet", "plugin_wallet"
QUIET_PLUGIN, QUIET_SCHEMA = "community", "plugin_community"
NOISY_LIMITS = {"connections": 3, "statementTimeout": "1s", "idleInTransactionTimeout": "1s"}


def settings_with_noisy_limits(stack: str) -> StackSettings:
    """The committed stack, with the noisy plugin's own `limits:` in its
    catalogue entry (small, so the test is quick)."""
    raw: dict[str, Any] = read_raw_config(ROOT, stack)
    raw["plugins"] = [
        {**entry, "limits": NOISY_LIMITS} if entry["plugin"] == NOISY_PLUGIN else entry
        for entry in raw["plugins"]
    ]
    return parse_settings(stack, raw)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_one_plugin_cannot_starve_the_others(fresh_pg: PgServer, stack: str) -> None:
    """dev: single logins; prod: alternating, the noisy identity's `_a`
    login floods (each of `_a`/`_b` carries the identity's limit)."""
    settings = settings_with_noisy_limits(stack)
    plan = settings.plan
    noisy = plan.logins_of(f"naap_{NOISY_PLUGIN}")[0]
    quiet = plan.logins_of(f"naap_{QUIET_PLUGIN}")[0]
    passwords = prepare(fresh_pg, plan, plan_to_sql(plan))
    create_tables(fresh_pg, NOISY_SCHEMA, QUIET_SCHEMA)

    report = run_neighbour_load(
        fresh_pg,
        plan,
        passwords,
        noisy=noisy,
        noisy_schema=NOISY_SCHEMA,
        quiet=quiet,
        quiet_schema=QUIET_SCHEMA,
        catalog=settings.catalog,
        migrations=ROOT / "migrations",
    )
    print(f"\n{stack}: {report.summary()}")

    # Refused at exactly its limit, by the server, with PostgreSQL's message.
    assert report.limit == 3
    assert (report.opened, report.refused) == (3, report.attempts - 3)
    assert report.refused == 5
    assert report.other_noisy_errors == []
    assert report.refusals == {f'FATAL:  {TOO_MANY} "{noisy}"'}
    # Its neighbours and the push never failed.
    assert report.errors == []
    assert (report.quiet_failures, report.push_failures) == (0, 0)
    # ... while the noisy plugin held every connection it may have.
    assert report.quiet_while_flooded >= 4
    assert report.push_while_flooded >= 1
    # The long query was cancelled by the statement timeout.
    assert report.cancel_sqlstate == "57014"
    assert "canceling statement due to statement timeout" in report.cancel_message
    # The idle transaction was ended by the server and its row lock released.
    assert report.lock_acquired
    assert report.idle_session_closed
    assert "idle-in-transaction timeout" in report.idle_message


def test_the_limits_are_per_login_and_the_server_holds_them(fresh_pg: PgServer) -> None:
    """What the plan's SQL leaves on the server is what the plan says, login
    by login (the same values `pulumi up` gives the Role resources)."""
    settings = settings_with_noisy_limits("prod")
    plan = settings.plan
    fresh_pg.execute(plan_to_sql(plan))
    with fresh_pg.connect() as connection:
        rows = connection.execute(
            "SELECT rolname, rolconnlimit, coalesce(rolconfig, '{}') FROM pg_roles "
            "WHERE rolname LIKE 'naap%'"
        ).fetchall()
    live = {name: (limit, sorted(config)) for name, limit, config in rows}
    for role in plan.roles:
        if role.name not in live:
            continue
        if role.limits is None:
            assert live[role.name] == (-1, []), role.name
        else:
            assert live[role.name] == (
                role.limits.connections,
                [
                    f"idle_in_transaction_session_timeout={role.limits.idle_in_transaction_timeout_ms}",
                    f"statement_timeout={role.limits.statement_timeout_ms}",
                ],
            ), role.name
    assert live["naap_wallet_a"][0] == live["naap_wallet_b"][0] == 3
    assert live["naap_wallet"] == (-1, [])

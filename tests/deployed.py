"""A database as `pulumi up` leaves it, for the tests that push to it: the
plan's SQL applied, every login given a password, each schema's push login
the one its password derives to from a test push key (`naapdb.pushkey`)."""

from __future__ import annotations

from collections.abc import Mapping

from naapdb import pushkey
from naapdb.plan import SCHEMA_MIGRATOR, AccessPlan
from naapdb.sql import plan_to_sql
from tests.pgserver import PgServer

# What `pulumi up` generates is 40 letters and digits; this stands in for it.
PUSH_KEY = "test-push-key-" + "k" * 40


def push_passwords(plan: AccessPlan, key: str = PUSH_KEY) -> dict[str, str]:
    """Each schema's push login -> its derived password."""
    return {
        role.name: pushkey.login_password(key, role.name)
        for role in plan.roles
        if role.purpose == SCHEMA_MIGRATOR
    }


def deploy(server: PgServer, plan: AccessPlan, passwords: Mapping[str, str], default: str) -> None:
    """Apply the plan and give each login its password: `passwords`' own,
    a push login its derived one, any other login `default`."""
    server.execute(plan_to_sql(plan))
    derived = push_passwords(plan)
    server.set_passwords(
        {
            role.name: passwords.get(role.name) or derived.get(role.name) or default
            for role in plan.login_roles
        }
    )

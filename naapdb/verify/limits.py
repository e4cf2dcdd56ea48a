"""The drift check of a login's limits (`naapdb.limits`): its connection
limit (`rolconnlimit`) and its timeouts (`rolconfig`, and any per-database
setting of `naap`, which takes precedence), each reported with the
statement that puts back the plan's value.

A limit changed by hand is worth a report of its own: a login may change
its own role settings (`ALTER ROLE naap_wallet SET statement_timeout = 0`
needs no privilege), and a raised connection limit breaks the budget the
catalogue was checked against. Only logins are compared: a limit or a
setting applies to the role a session logs in as, never to its groups.

The server's own `max_connections` is compared with the budget too: for a
container or an external server the ceiling is a setting, which may say
more than the server has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Protocol

from psycopg import sql

from naapdb.limits import Budget, format_duration, role_settings
from naapdb.plan import Role

# A stored setting value: a number with an optional unit (PostgreSQL keeps
# what ALTER ROLE SET was given; pulumi-postgresql gives milliseconds).
SETTING_VALUE = re.compile(r"\s*(\d+)\s*(ms|s|min|h|d)?\s*")
UNIT_MS = {None: 1, "ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


class LiveLimits(Protocol):
    """What the catalog query read of a role (`naapdb.verify.LiveRole`)."""

    @property
    def connection_limit(self) -> int: ...
    @property
    def settings(self) -> tuple[str, ...]: ...
    @property
    def database_settings(self) -> tuple[str, ...]: ...


def setting_values(settings: Sequence[str]) -> dict[str, str]:
    """`{"statement_timeout=30000", ...}` as a mapping."""
    values: dict[str, str] = {}
    for item in settings:
        name, _, value = item.partition("=")
        values[name] = value
    return values


def milliseconds(value: str) -> int | None:
    """A stored timeout in milliseconds ("30000", "30s", "1min"); None if unreadable."""
    match = SETTING_VALUE.fullmatch(value)
    if match is None:
        return None
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def limit_drift(role: Role, live: LiveLimits, database: str) -> Iterator[tuple[str, sql.Composed]]:
    """(message, fix) for each of a login's limits that differs from the plan."""
    if not role.login or role.limits is None:
        return
    name = sql.Identifier(role.name)
    planned = role.limits
    if live.connection_limit != planned.connections:
        held = (
            "no connection limit"
            if live.connection_limit < 0
            else f"connection limit {live.connection_limit}"
        )
        yield (
            f"role {role.name} has {held}, the plan says {planned.connections}",
            sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                name, sql.SQL(str(int(planned.connections)))
            ),
        )
    own = setting_values(live.settings)
    in_database = setting_values(live.database_settings)
    for setting, expected in role_settings(planned).items():
        if setting in in_database:
            yield (
                f"role {role.name} has {setting} = {in_database[setting]} in database "
                f"{database}, which overrides the plan's {format_duration(expected)}",
                sql.SQL("ALTER ROLE {} IN DATABASE {} RESET {}").format(
                    name, sql.Identifier(database), sql.SQL(setting)
                ),
            )
        value = own.get(setting)
        if value is None or milliseconds(value) != expected:
            held = "no value" if value is None else value
            yield (
                f"role {role.name} has {setting} {held}, the plan says {format_duration(expected)}",
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    name, sql.SQL(setting), sql.Literal(expected)
                ),
            )


def budget_drift(budget: Budget, max_connections: int) -> tuple[str, sql.Composed] | None:
    """(message, fix) when the server's max_connections is too small for
    the budget the stack was checked against."""
    available = max_connections - budget.ceiling.reserved
    if budget.total <= available:
        return None
    return (
        f"the server has max_connections {max_connections}, {available} of them for the "
        f"plan's logins and the admin, but the budget needs {budget.total} "
        f"({budget.ceiling.source}: {budget.ceiling.max_connections}), so raise it (then restart "
        "the server, or reboot an RDS instance) or lower the limits",
        sql.SQL("ALTER SYSTEM SET max_connections = {}").format(
            sql.SQL(str(int(budget.ceiling.max_connections)))
        ),
    )

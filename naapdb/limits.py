"""Per-identity limits (connections, statement timeout, idle-in-transaction
timeout) and the connection budget that keeps their sum inside the server.

Every plugin shares one PostgreSQL: without limits one plugin's login can
take every connection, run a query for an hour or sit in an open
transaction holding locks, and every other plugin and the push fail. So
each login identity gets a connection limit and two timeouts, from
`naap-db:limits` (stack-wide: `plugins`, `naap_app`, `naap_readonly`,
`naap_migrator`) and a catalogue entry's own `limits:`.

Under alternating rotation an identity is NOLOGIN and its two logins
`_a`/`_b` each carry the identity's limits in full: clients use one login
at a time (the secret's AWSCURRENT), but during a rotation the old login's
open connections drain while new ones open on the other, so an identity
may hold up to twice its limit for a while. The budget counts both logins,
so the sum holds even then.

The budget: every login's connection limit plus the admin's pool
(`adminConnections`, the provider's `max_connections`) must fit
`max_connections` minus the slots PostgreSQL keeps for superusers
(`superuser_reserved_connections`, 3; RDS also keeps
`rds.rds_superuser_reserved_connections`, 2). The push logs in as
`naap_migrator`, so its need is that identity's limit. The ceiling is a
setting (`maxConnections`, PostgreSQL's default 100) for container and
external servers; for RDS it is RDS's default formula
`LEAST(DBInstanceClassMemory/9531392, 5000)` on the instance class's
memory, which the program writes into the parameter group, so the server
has exactly the ceiling the budget was checked against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from naapdb import names
from naapdb.errors import ConfigError

LIMITS_KEY = "naap-db:limits"
# The keys of one set of limits, in config (camelCase) spelling.
LIMIT_KEYS = ("connections", "statementTimeout", "idleInTransactionTimeout")
PLATFORM_IDENTITIES = (names.APP, names.READONLY, names.MIGRATOR)
SETTING_KEYS = ("plugins", *PLATFORM_IDENTITIES, "maxConnections", "adminConnections")

# PostgreSQL's own bounds: max_connections is at most 262143 and a
# millisecond setting is an int4.
MAX_CONNECTIONS = 262_143
MAX_MILLISECONDS = 2_147_483_647
POSTGRES_DEFAULT_MAX_CONNECTIONS = 100
SUPERUSER_RESERVED = 3
RDS_SUPERUSER_RESERVED = 2
# The pulumi-postgresql provider's own default pool (max_connections 20).
DEFAULT_ADMIN_CONNECTIONS = 20

DURATION = re.compile(r"(\d+)\s*(ms|s|min|h|d)")
UNIT_MS = {"ms": 1, "s": 1_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True)
class Limits:
    """What one login may use: concurrent connections, and how long a
    statement may run or a transaction stay idle before the server ends it
    (milliseconds, PostgreSQL's unit for both settings)."""

    connections: int
    statement_timeout_ms: int
    idle_in_transaction_timeout_ms: int


@dataclass(frozen=True)
class LimitOverride:
    """Some of the limits (a catalogue entry's `limits:`, or a partial
    stack setting); what it leaves out comes from the limits it overrides."""

    connections: int | None = None
    statement_timeout_ms: int | None = None
    idle_in_transaction_timeout_ms: int | None = None

    def over(self, base: Limits) -> Limits:
        """`base` with this override's values in place of its own."""
        return Limits(
            connections=self.connections if self.connections is not None else base.connections,
            statement_timeout_ms=(
                self.statement_timeout_ms
                if self.statement_timeout_ms is not None
                else base.statement_timeout_ms
            ),
            idle_in_transaction_timeout_ms=(
                self.idle_in_transaction_timeout_ms
                if self.idle_in_transaction_timeout_ms is not None
                else base.idle_in_transaction_timeout_ms
            ),
        )


# Built-in defaults: a plugin's pool of 5, a 30 s statement, a minute idle
# in a transaction; the shared pool larger; analytics may run longer; the
# push's migrations may build an index for half an hour. With the default
# catalogue (8 plugins) and single rotation they fit PostgreSQL's default
# max_connections of 100: 8 x 5 + 20 + 5 + 2 + admin 20 = 87 <= 97.
DEFAULT_PLUGIN_LIMITS = Limits(5, 30_000, 60_000)
DEFAULT_PLATFORM_LIMITS: Mapping[str, Limits] = {
    names.APP: Limits(20, 30_000, 60_000),
    names.READONLY: Limits(5, 300_000, 60_000),
    names.MIGRATOR: Limits(2, 1_800_000, 300_000),
}


@dataclass(frozen=True)
class LimitSettings:
    """`naap-db:limits`: the stack-wide defaults and the server's ceiling."""

    plugins: Limits = DEFAULT_PLUGIN_LIMITS
    platform: Mapping[str, Limits] = field(default_factory=lambda: dict(DEFAULT_PLATFORM_LIMITS))
    max_connections: int | None = None
    """`maxConnections`: None takes the server's (PostgreSQL's default, or
    the RDS formula on the instance class)."""
    admin_connections: int = DEFAULT_ADMIN_CONNECTIONS

    def of_platform(self, identity: str) -> Limits:
        return self.platform[identity]


# The role settings (`ALTER ROLE ... SET`) that carry the timeouts.
STATEMENT_TIMEOUT = "statement_timeout"
IDLE_IN_TRANSACTION_TIMEOUT = "idle_in_transaction_session_timeout"


def role_settings(limits: Limits) -> dict[str, int]:
    """The timeouts as PostgreSQL role settings, in milliseconds."""
    return {
        STATEMENT_TIMEOUT: limits.statement_timeout_ms,
        IDLE_IN_TRANSACTION_TIMEOUT: limits.idle_in_transaction_timeout_ms,
    }


def format_duration(milliseconds: int) -> str:
    """The largest exact unit: 30000 -> 30s, 90000 -> 90s, 1800000 -> 30min."""
    for unit in ("d", "h", "min", "s"):
        size = UNIT_MS[unit]
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def parse_duration(value: Any, key: str) -> int:
    """A positive duration with a unit ("30s", "500ms", "5min", "1h", "1d")
    as milliseconds. A bare number is refused: PostgreSQL would read it as
    milliseconds, YAML readers as seconds."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise ConfigError(key, f"{value!r} is not a duration; write e.g. 30s, 500ms or 5min")
    if isinstance(text, int) or text.isdigit():
        raise ConfigError(
            key, f"{value!r} has no unit; write e.g. {value}s or {value}ms (ms, s, min, h, d)"
        )
    match = DURATION.fullmatch(text)
    if match is None:
        raise ConfigError(key, f"{value!r} is not a duration; write e.g. 30s, 500ms or 5min")
    milliseconds = int(match.group(1)) * UNIT_MS[match.group(2)]
    if milliseconds <= 0:
        raise ConfigError(key, f"{value!r} must be positive (0 would switch the timeout off)")
    if milliseconds > MAX_MILLISECONDS:
        raise ConfigError(key, f"{value!r} is over PostgreSQL's maximum (about 24 days)")
    return milliseconds


def parse_count(value: Any, key: str, *, maximum: int = MAX_CONNECTIONS) -> int:
    """A positive whole number (`pulumi config set` may store "20")."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(key, f"{value!r} is not a positive whole number of connections")
    if value > maximum:
        raise ConfigError(key, f"{value} is over PostgreSQL's maximum of {maximum}")
    return value


def parse_override(raw: Any, key: str) -> LimitOverride:
    """A mapping of some of `connections`, `statementTimeout`,
    `idleInTransactionTimeout`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(
            key,
            "must be a mapping, e.g. {connections: 20, statementTimeout: 30s, "
            "idleInTransactionTimeout: 60s}",
        )
    for name in raw:
        if name not in LIMIT_KEYS:
            raise ConfigError(
                f"{key}.{name}", f"unknown key; limits take only {', '.join(LIMIT_KEYS)}"
            )
    connections = raw.get("connections")
    statement = raw.get("statementTimeout")
    idle = raw.get("idleInTransactionTimeout")
    return LimitOverride(
        connections=None if connections is None else parse_count(connections, f"{key}.connections"),
        statement_timeout_ms=(
            None if statement is None else parse_duration(statement, f"{key}.statementTimeout")
        ),
        idle_in_transaction_timeout_ms=(
            None if idle is None else parse_duration(idle, f"{key}.idleInTransactionTimeout")
        ),
    )


def parse_limit_settings(raw: Any) -> LimitSettings:
    """Validate `naap-db:limits` (absent: the built-in defaults)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(LIMITS_KEY, f"must be a mapping ({', '.join(SETTING_KEYS)})")
    for name in raw:
        if name not in SETTING_KEYS:
            raise ConfigError(
                f"{LIMITS_KEY}.{name}", f"unknown key; known keys are {', '.join(SETTING_KEYS)}"
            )
    settings = LimitSettings()
    if raw.get("plugins") is not None:
        plugins = parse_override(raw["plugins"], f"{LIMITS_KEY}.plugins").over(settings.plugins)
        settings = replace(settings, plugins=plugins)
    platform = dict(settings.platform)
    for identity in PLATFORM_IDENTITIES:
        if raw.get(identity) is not None:
            override = parse_override(raw[identity], f"{LIMITS_KEY}.{identity}")
            platform[identity] = override.over(platform[identity])
    max_connections = raw.get("maxConnections")
    admin = raw.get("adminConnections")
    return replace(
        settings,
        platform=platform,
        max_connections=(
            None
            if max_connections is None
            else parse_count(max_connections, f"{LIMITS_KEY}.maxConnections")
        ),
        admin_connections=(
            DEFAULT_ADMIN_CONNECTIONS
            if admin is None
            else parse_count(admin, f"{LIMITS_KEY}.adminConnections")
        ),
    )


# --- the server's ceiling ---------------------------------------------------

# Memory (GiB) per vCPU of the RDS instance families whose memory follows
# their size; burstable classes are listed one by one.
GIB_PER_VCPU = {
    **dict.fromkeys(("m5", "m5d", "m6g", "m6gd", "m6i", "m6id", "m6in", "m7g", "m7gd", "m7i"), 4),
    **dict.fromkeys(
        ("r5", "r5b", "r5d", "r6g", "r6gd", "r6i", "r6id", "r6in", "r7g", "r7gd", "r7i"), 8
    ),
}
BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
BURSTABLE_FAMILIES = frozenset({"t3", "t4g"})
SIZE = re.compile(r"(\d*)xlarge|large")
RDS_BYTES_PER_CONNECTION = 9_531_392
RDS_FORMULA_CAP = 5_000


def instance_memory_gib(instance_class: str) -> int | None:
    """The memory of an RDS instance class (db.m7g.large -> 8), None if unknown."""
    parts = instance_class.split(".")
    if len(parts) != 3 or parts[0] != "db":
        return None
    family, size = parts[1], parts[2]
    if family in BURSTABLE_FAMILIES:
        return BURSTABLE_GIB.get(size)
    per_vcpu = GIB_PER_VCPU.get(family)
    match = SIZE.fullmatch(size)
    if per_vcpu is None or match is None:
        return None
    vcpus = 2 if size == "large" else 4 * int(match.group(1) or 1)
    return per_vcpu * vcpus


def rds_default_max_connections(memory_gib: int) -> int:
    """RDS for PostgreSQL's default: LEAST({DBInstanceClassMemory/9531392}, 5000)."""
    return min(memory_gib * 2**30 // RDS_BYTES_PER_CONNECTION, RDS_FORMULA_CAP)


@dataclass(frozen=True)
class Ceiling:
    """The server's max_connections, the slots kept for superusers, and
    which config key sets it (for the message when the budget does not fit)."""

    max_connections: int
    reserved: int
    source: str
    """How the figure was found, e.g. "naap-db:limits.maxConnections" or
    "db.m7g.large (8 GiB, RDS's default formula)"."""
    raise_with: str
    """What to change to raise it."""

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved


@dataclass(frozen=True)
class Budget:
    """The sum of every login's connection limit and the admin's pool,
    against the ceiling."""

    logins: int
    admin: int
    ceiling: Ceiling

    @property
    def total(self) -> int:
        return self.logins + self.admin

    @property
    def fits(self) -> bool:
        return self.total <= self.ceiling.available

    def describe(self) -> str:
        """One line, e.g. for `plan`: 87 of 97 connections (...)."""
        return (
            f"{self.total} of {self.ceiling.available} connections: logins {self.logins} + "
            f"admin {self.admin}; max_connections {self.ceiling.max_connections} "
            f"({self.ceiling.source}) - {self.ceiling.reserved} reserved for superusers"
        )

    def check(self) -> None:
        """Refuse a budget that does not fit, naming the sum, the ceiling
        and the keys to change."""
        if self.fits:
            return
        raise ConfigError(
            LIMITS_KEY,
            f"the connection budget does not fit: {self.describe()}; lower "
            f"{LIMITS_KEY}.plugins.connections (or a plugin's limits.connections) "
            f"or raise {self.ceiling.raise_with}",
        )


def ceiling_for(kind: str, instance_class: str | None, limits: LimitSettings) -> Ceiling:
    """The ceiling of a server kind: `maxConnections` if set; else RDS's
    formula on the instance class, or PostgreSQL's default of 100."""
    key = f"{LIMITS_KEY}.maxConnections"
    reserved = SUPERUSER_RESERVED + (RDS_SUPERUSER_RESERVED if kind == "rds" else 0)
    if limits.max_connections is not None:
        return Ceiling(limits.max_connections, reserved, key, key)
    if kind != "rds" or instance_class is None:
        source = f"PostgreSQL's default; {key} if the server has another"
        return Ceiling(POSTGRES_DEFAULT_MAX_CONNECTIONS, reserved, source, key)
    memory = instance_memory_gib(instance_class)
    if memory is None:
        raise ConfigError(
            key,
            f"the connection ceiling of instance class {instance_class!r} is not known; set "
            "it (it becomes the parameter group's max_connections)",
        )
    return Ceiling(
        rds_default_max_connections(memory),
        reserved,
        f"{instance_class}, {memory} GiB, RDS's default formula",
        f"{key} or naap-db:server.instanceClass",
    )

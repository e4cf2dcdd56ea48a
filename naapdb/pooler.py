"""The connection pooler a stack may put in front of its server
(`naap-db:pooler`, off by default), and the per-login pools it holds.

Three kinds, like the server's:

- `container` (dev): PgBouncer in a Docker container beside the PostgreSQL
  container, on a Docker network of the stack (`components/pooler.py`),
  configured by `naapdb.pgbouncer`;
- `rds` (prod): Amazon RDS Proxy in front of the RDS instance, reading each
  login's credentials from Secrets Manager (`components/proxy.py`);
- `external`: a pooler the user runs, at the address they give.

Which logins go through it: the application identities (each plugin's
login, `naap_app`, `naap_readonly`, and their alternating logins), by
purpose. Every other login goes direct, the push's above all: it holds a
session-level advisory lock and runs each file in one transaction, which a
transaction pooler would hand to different server connections. So the
rule is an allowlist: a login purpose the pooler does not know (a new kind
of push login, say) goes direct without anyone having to remember it.

A pool is a login's connection limit (`naap-db:limits`, a catalogue
entry's `limits:`): the pooler opens at most that many server connections
for the login, and PostgreSQL's `CONNECTION LIMIT` on the role enforces the
same number for anyone who bypasses it. So the server's side of the
connection budget is unchanged by a pooler; what grows is the number of
client connections the platform may open, which the pooler multiplexes
onto those server connections (docs/pooler.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from naapdb.configvalues import (
    check_bind_address,
    check_port,
    check_sslmode,
    dataclass_values,
    has_pinned_tag,
)
from naapdb.errors import ConfigError
from naapdb.limits import Budget
from naapdb.plan import AccessPlan, Role

POOLER_KEY = "naap-db:pooler"
POOL_MODES = ("transaction", "session")
# PgBouncer 1.25.1 (the edoburu image: Alpine, PgBouncer built from source).
DEFAULT_PGBOUNCER_IMAGE = "edoburu/pgbouncer:v1.25.1-p0"
PGBOUNCER_PORT = 6432
DEFAULT_MAX_CLIENT_CONNECTIONS = 1000
# RDS Proxy listens on PostgreSQL's port; its certificate comes from ACM and
# chains to Amazon's public roots, which the system's CA bundle holds.
RDS_PROXY_PORT = 5432
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# AWS's quota of Secrets Manager secrets one RDS Proxy may use (one per login).
RDS_PROXY_MAX_SECRETS = 200
# Identities (by purpose) whose logins the pooler serves; anything else,
# the push's logins first, connects to the server directly.
POOLED_PURPOSES = frozenset({"plugin", "app", "readonly"})


@dataclass(frozen=True)
class ContainerPooler:
    """PgBouncer in a container beside the dev server."""

    kind = "container"
    image: str = DEFAULT_PGBOUNCER_IMAGE
    port: int = PGBOUNCER_PORT
    bind_address: str = "127.0.0.1"
    pool_mode: str = "transaction"
    max_client_connections: int = DEFAULT_MAX_CLIENT_CONNECTIONS
    container_name: str | None = None

    @property
    def connect_host(self) -> str:
        """Where this machine reaches the published port (a wildcard bind on loopback)."""
        return "127.0.0.1" if self.bind_address in ("0.0.0.0", "::") else self.bind_address

    @property
    def sslmode(self) -> str:
        # Inside the machine, like the dev server: the stock image has no certificate.
        return "disable"

    @property
    def sslrootcert(self) -> str | None:
        return None


@dataclass(frozen=True)
class RdsPooler:
    """Amazon RDS Proxy in front of the prod instance."""

    kind = "rds"
    idle_client_timeout: int = 1800
    """Seconds a client connection may sit idle before the proxy closes it."""
    connection_borrow_timeout: int = 120
    """Seconds a client waits for a server connection when the pool is full."""
    client_ssl_root_cert: str = SYSTEM_CA_BUNDLE
    """The CA bundle clients verify the proxy's (ACM) certificate with."""

    @property
    def pool_mode(self) -> str:
        # RDS Proxy multiplexes per transaction (and pins sessions that need it).
        return "transaction"

    @property
    def sslmode(self) -> str:
        return "verify-full"

    @property
    def sslrootcert(self) -> str | None:
        return self.client_ssl_root_cert


@dataclass(frozen=True)
class ExternalPooler:
    """A pooler the user runs (PgBouncer, pgcat, a platform's own)."""

    kind = "external"
    host: str = ""
    port: int = PGBOUNCER_PORT
    sslmode: str = "require"
    sslrootcert: str | None = None
    pool_mode: str = "transaction"


PoolerSettings = ContainerPooler | RdsPooler | ExternalPooler
POOLER_KINDS: dict[str, type[ContainerPooler] | type[RdsPooler] | type[ExternalPooler]] = {
    "container": ContainerPooler,
    "rds": RdsPooler,
    "external": ExternalPooler,
}


def parse_pooler(raw: Any, server: Any, production: bool) -> PoolerSettings | None:
    """Validate `naap-db:pooler` (absent: no pooler) for `server` (the
    stack's `naapdb.settings` server). A container pooler sits beside a
    container server, RDS Proxy in front of an rds one; an external pooler
    may front any server."""
    server_kind = server.kind
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            POOLER_KEY, "must be a mapping with a `kind` (container, rds or external)"
        )
    kind = raw.get("kind")
    if kind not in POOLER_KINDS:
        raise ConfigError(
            f"{POOLER_KEY}.kind",
            f"unknown pooler kind {kind!r}; use one of {', '.join(POOLER_KINDS)} "
            "(remove naap-db:pooler for none)",
        )
    if kind in ("container", "rds") and server_kind != kind:
        what = "PgBouncer container runs beside" if kind == "container" else "RDS Proxy fronts"
        article = "an" if kind == "rds" else "a"
        raise ConfigError(
            f"{POOLER_KEY}.kind",
            f"{article} {kind} pooler needs naap-db:server.kind {kind} (the {what} it); with "
            f"{'an' if server_kind in ('rds', 'external') else 'a'} {server_kind} server use "
            "kind external and give its address",
        )
    values = dataclass_values(
        POOLER_KINDS[kind], {k: v for k, v in raw.items() if k != "kind"}, POOLER_KEY
    )
    pooler: PoolerSettings = POOLER_KINDS[kind](**values)
    _check_pooler(pooler, production)
    if isinstance(pooler, ContainerPooler) and _same_port(pooler, server):
        raise ConfigError(
            f"{POOLER_KEY}.port",
            f"{pooler.port} is the server's own port on this machine; use another "
            f"(default {PGBOUNCER_PORT})",
        )
    return pooler


def _same_port(pooler: ContainerPooler, server: Any) -> bool:
    """Whether the pooler would publish the port the server container does."""
    if pooler.port != server.port:
        return False
    wildcard = ("0.0.0.0", "::")
    return (
        pooler.bind_address == server.bind_address
        or pooler.bind_address in wildcard
        or server.bind_address in wildcard
    )


def _check_pooler(pooler: PoolerSettings, production: bool) -> None:
    key = POOLER_KEY
    if not isinstance(pooler, RdsPooler) and pooler.pool_mode not in POOL_MODES:
        raise ConfigError(
            f"{key}.poolMode", f"{pooler.pool_mode!r} is not one of {', '.join(POOL_MODES)}"
        )
    if isinstance(pooler, ContainerPooler):
        check_port(pooler.port, f"{key}.port")
        if not has_pinned_tag(pooler.image):
            raise ConfigError(
                f"{key}.image",
                f"{pooler.image!r} has no pinned tag; name a version, e.g. "
                f"{DEFAULT_PGBOUNCER_IMAGE}",
            )
        check_bind_address(pooler.bind_address, f"{key}.bindAddress", production, "the pooler")
        if pooler.max_client_connections < 1:
            raise ConfigError(f"{key}.maxClientConnections", "must be at least 1")
    elif isinstance(pooler, RdsPooler):
        if not 1 <= pooler.idle_client_timeout <= 28_800:
            raise ConfigError(f"{key}.idleClientTimeout", "must be 1-28800 seconds (RDS's range)")
        if not 1 <= pooler.connection_borrow_timeout <= 3_600:
            raise ConfigError(
                f"{key}.connectionBorrowTimeout", "must be 1-3600 seconds (RDS's range)"
            )
    else:
        if not pooler.host:
            raise ConfigError(f"{key}.host", "is required for an external pooler")
        check_port(pooler.port, f"{key}.port")
        check_sslmode(pooler.sslmode, f"{key}.sslmode")


# --- the pools ----------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """The server connections the pooler may hold for one login."""

    login: str
    identity: str
    size: int


def identity_purpose(plan: AccessPlan, role: Role) -> str:
    """The purpose of the identity a login carries (an alternating login's
    own purpose is `login`)."""
    return plan.role(role.identity).purpose if role.identity else role.purpose


def is_pooled(plan: AccessPlan, role: Role) -> bool:
    """Whether the pooler serves this login (module docstring: an allowlist)."""
    return role.login and identity_purpose(plan, role) in POOLED_PURPOSES


def pools(plan: AccessPlan) -> tuple[Pool, ...]:
    """One pool per pooled login, its size the login's connection limit, in plan order."""
    return tuple(
        Pool(role.name, role.identity or role.name, role.limits.connections if role.limits else 0)
        for role in plan.login_roles
        if is_pooled(plan, role)
    )


def direct_logins(plan: AccessPlan) -> tuple[Role, ...]:
    """The logins that never go through the pooler (the push's among them)."""
    return tuple(role for role in plan.login_roles if not is_pooled(plan, role))


@dataclass(frozen=True)
class PoolerBudget:
    """Both sides of a pooled stack's connections: the clients the pooler
    accepts, and what reaches the server (pools, direct logins, the admin)."""

    pooler: PoolerSettings
    pools: tuple[Pool, ...]
    direct: int
    """The connection limits of the logins that go direct."""
    server: Budget

    @property
    def pooled(self) -> int:
        """Server connections the pools may hold together."""
        return sum(pool.size for pool in self.pools)

    @property
    def client_connections(self) -> int | None:
        """Client connections the pooler accepts (None: not naap-db's to set)."""
        if isinstance(self.pooler, ContainerPooler):
            return self.pooler.max_client_connections
        return None

    @property
    def proxy_max_connections_percent(self) -> int:
        """RDS Proxy's `max_connections_percent`: the pools' share of the
        server's max_connections, rounded up."""
        share = math.ceil(100 * self.pooled / self.server.ceiling.max_connections)
        return min(max(share, 1), 100)

    def describe(self) -> list[str]:
        """Two lines: the pooler's side and the server's side."""
        clients = self.client_connections
        accepted = f"up to {clients} client connections" if clients else "client connections"
        pooler = (
            f"pooler ({self.pooler.kind}, {self.pooler.pool_mode} pooling): {accepted} onto "
            f"{self.pooled} server connections in {len(self.pools)} pools"
        )
        if isinstance(self.pooler, RdsPooler):
            pooler += f" (max_connections_percent {self.proxy_max_connections_percent})"
        server = (
            f"server: pools {self.pooled} + direct logins {self.direct} + admin "
            f"{self.server.admin} = {self.server.total} of {self.server.ceiling.available}"
        )
        return [pooler, server]

    def check(self) -> None:
        """A pooler that could not fill its own pools, or an RDS Proxy with
        more logins than AWS lets it read, is refused."""
        clients = self.client_connections
        if clients is not None and clients < self.pooled:
            raise ConfigError(
                f"{POOLER_KEY}.maxClientConnections",
                f"{clients} is below the {self.pooled} server connections of the pools; "
                f"raise it (clients are what a pooler multiplies)",
            )
        if isinstance(self.pooler, RdsPooler) and len(self.pools) > RDS_PROXY_MAX_SECRETS:
            raise ConfigError(
                POOLER_KEY,
                f"RDS Proxy reads one secret per login and takes at most "
                f"{RDS_PROXY_MAX_SECRETS}; this stack pools {len(self.pools)} logins "
                "(two per identity under alternating rotation); split the catalogue or use "
                "kind external",
            )


def pooler_budget(pooler: PoolerSettings, plan: AccessPlan, budget: Budget) -> PoolerBudget:
    direct = sum(role.limits.connections for role in direct_logins(plan) if role.limits)
    return PoolerBudget(pooler, pools(plan), direct, budget)


# --- what clients are told ------------------------------------------------------

SESSION_STATE = (
    "session state (SET, session advisory locks, LISTEN, temporary tables, WITH HOLD "
    "cursors) does not outlive a transaction"
)


def client_notes(pooler: PoolerSettings, prepared_statements: bool) -> str:
    """What a pooled URL means for the client, said where the URL is handed
    out (the `pooler` stack output, `dotenv`): the pool mode's limits,
    prepared statements, and Prisma's `pgbouncer=true`."""
    if pooler.pool_mode == "session":
        return (
            "session pooling: a client keeps one server connection until it disconnects; "
            "prepared statements and session state work; Prisma needs no pgbouncer=true"
        )
    if isinstance(pooler, RdsPooler):
        return (
            "RDS Proxy: transaction multiplexing; prepared statements and session-level SET "
            "pin a client to one server connection while it is open (no sharing); Prisma: "
            "add pgbouncer=true to the URL so it avoids named prepared statements"
        )
    if prepared_statements:
        return (
            f"transaction pooling (PgBouncer): {SESSION_STATE}; protocol-level prepared "
            "statements work (PgBouncer max_prepared_statements); Prisma: no pgbouncer=true "
            "(Prisma's advice for PgBouncer 1.21 and later)"
        )
    return (
        f"transaction pooling: {SESSION_STATE}; named prepared statements do not survive "
        "one either, so turn them off in the client; Prisma: add pgbouncer=true to the URL"
    )


def pooled_endpoint(pooler: PoolerSettings) -> tuple[str, int] | None:
    """(host, port) of the pooler when known from config (RDS Proxy's endpoint
    is known only once created)."""
    if isinstance(pooler, ContainerPooler):
        return pooler.connect_host, pooler.port
    if isinstance(pooler, ExternalPooler):
        return pooler.host, pooler.port
    return None

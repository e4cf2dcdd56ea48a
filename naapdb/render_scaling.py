"""What `plan` adds for a stack with a pooler or read replicas: the pools
(one per pooled login, its size the login's connection limit), the logins
that go direct, both sides of the connection budget, and who reads from
the replicas. Kept apart from `naapdb.render` (the access plan itself),
so a stack without either prints exactly what it printed before."""

from __future__ import annotations

from typing import Any

from naapdb.pooler import ContainerPooler, ExternalPooler, RdsPooler, direct_logins
from naapdb.replicas import read_logins
from naapdb.settings import StackSettings


def scaling_lines(settings: StackSettings) -> list[str]:
    """Text lines for `plan --format text` (empty without pooler and replicas)."""
    lines: list[str] = []
    budget = settings.pooler_budget
    if budget is not None:
        pooler = budget.pooler
        lines += ["", f"pooler: {_where(settings)}, {pooler.pool_mode} pooling"]
        width = max((len(pool.login) for pool in budget.pools), default=5)
        lines.append(f"  {'pool':<{width}}  server connections")
        lines += [f"  {pool.login:<{width}}  {pool.size:>18}" for pool in budget.pools]
        direct = ", ".join(role.name for role in direct_logins(settings.plan)) or "-"
        lines.append(f"  direct to the server (never pooled): {direct}")
        lines += [f"connection budget, {side}" for side in budget.describe()]
    if settings.replicas:
        readers = ", ".join(read_logins(settings.plan, settings.catalog))
        lines += ["", f"read replicas: {len(settings.replicas)}; read URLs for {readers}"]
    return lines


def scaling_dict(settings: StackSettings) -> dict[str, Any]:
    """The keys `plan --format json` adds: `pooler` and `read_replicas`
    (each only when the stack has it)."""
    data: dict[str, Any] = {}
    budget = settings.pooler_budget
    if budget is not None:
        data["pooler"] = {
            "kind": budget.pooler.kind,
            "pool_mode": budget.pooler.pool_mode,
            "pools": [
                {"login": pool.login, "identity": pool.identity, "size": pool.size}
                for pool in budget.pools
            ],
            "direct": [role.name for role in direct_logins(settings.plan)],
            "client_connections": budget.client_connections,
            "server_connections": budget.pooled,
            "server_total": budget.server.total,
            "available": budget.server.ceiling.available,
        }
        if isinstance(budget.pooler, RdsPooler):
            data["pooler"]["max_connections_percent"] = budget.proxy_max_connections_percent
    if settings.replicas:
        data["read_replicas"] = {
            "count": len(settings.replicas),
            "readers": list(read_logins(settings.plan, settings.catalog)),
        }
    return data


def _where(settings: StackSettings) -> str:
    pooler = settings.pooler
    if isinstance(pooler, ContainerPooler):
        return f"PgBouncer container {pooler.image} on {pooler.connect_host}:{pooler.port}"
    if isinstance(pooler, ExternalPooler):
        return f"external at {pooler.host}:{pooler.port} (sslmode {pooler.sslmode})"
    return "RDS Proxy in front of the instance (TLS required)"

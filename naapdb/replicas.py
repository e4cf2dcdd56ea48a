"""Read replicas of the prod server (`naap-db:replicas`) and the logins
that read from them.

RDS read replicas of the instance, declared in `components/replicas.py`:
a count (`replicas: 2`, each like the primary) or a list, each entry with
its own `instanceClass` and `availabilityZone`. They replay the primary's
WAL, so every role, grant and table the primary has, they have: a table the
push creates is readable there with the same rights, and a write is
refused (`read-only transaction`).

Who reads there: `naap_readonly` always, and each plugin whose catalogue
entry says `readFrom: replica`. Those logins get a read URL (stack output
`read_urls`, `dotenv`'s `DATABASE_READ_URL`), spread over the replicas in
catalogue order so that each replica serves a share of the readers.
Everything else (and all writes) stays on the primary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from naapdb import names
from naapdb.catalog import Catalog
from naapdb.configvalues import dataclass_values, typed
from naapdb.errors import ConfigError
from naapdb.plan import AccessPlan

REPLICAS_KEY = "naap-db:replicas"
# RDS for PostgreSQL takes up to 15 read replicas of one instance.
MAX_REPLICAS = 15
AVAILABILITY_ZONE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+[a-z]")


@dataclass(frozen=True)
class Replica:
    """One read replica; None takes the primary's instance class, or lets
    RDS pick the availability zone."""

    instance_class: str | None = None
    availability_zone: str | None = None


def parse_replicas(raw: Any, server_kind: str) -> tuple[Replica, ...]:
    """Validate `naap-db:replicas`: absent or 0 for none, a count, or a list
    of `{instanceClass, availabilityZone}` (either optional)."""
    if raw is None or raw == 0 or raw == "0":
        return ()
    if server_kind != "rds":
        raise ConfigError(
            REPLICAS_KEY,
            "read replicas are RDS read replicas of the instance: they need "
            f"naap-db:server.kind rds, not {server_kind}; remove the key",
        )
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        replicas = tuple(_entry(item, f"{REPLICAS_KEY}[{i}]") for i, item in enumerate(raw))
    else:
        count = typed(raw, int, REPLICAS_KEY)
        if count < 0:
            raise ConfigError(REPLICAS_KEY, f"{count} is negative; use 0 for no replica")
        replicas = tuple(Replica() for _ in range(count))
    if len(replicas) > MAX_REPLICAS:
        raise ConfigError(
            REPLICAS_KEY, f"{len(replicas)} replicas; RDS takes at most {MAX_REPLICAS}"
        )
    return replicas


def _entry(item: Any, key: str) -> Replica:
    if not isinstance(item, Mapping):
        raise ConfigError(key, "must be a mapping (instanceClass, availabilityZone)")
    replica = Replica(**dataclass_values(Replica, item, key))
    if replica.instance_class is not None and not replica.instance_class.startswith("db."):
        raise ConfigError(
            f"{key}.instanceClass",
            f"{replica.instance_class!r} is not an RDS instance class (db.t4g.medium, ...)",
        )
    zone = replica.availability_zone
    if zone is not None and not AVAILABILITY_ZONE.fullmatch(zone):
        raise ConfigError(
            f"{key}.availabilityZone", f"{zone!r} is not an availability zone, e.g. us-east-1b"
        )
    return replica


def read_identities(catalog: Catalog) -> tuple[str, ...]:
    """The identities that read from the replicas: each plugin asking for it
    (`readFrom: replica`), in catalogue order, then `naap_readonly`."""
    plugins = [
        names.plugin_login(entry.plugin)
        for entry in catalog.plugins
        if entry.read_from == "replica"
    ]
    return (*plugins, names.READONLY)


def read_logins(plan: AccessPlan, catalog: Catalog) -> tuple[str, ...]:
    """The logins that get a read URL: each read identity's first login
    (the one whose first password Pulumi knows)."""
    return tuple(plan.logins_of(identity)[0] for identity in read_identities(catalog))


def replica_of(position: int, replica_count: int) -> int:
    """Which replica (index) the login at `position` of `read_logins` reads from."""
    return position % replica_count

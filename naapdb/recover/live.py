"""What exists, whatever the state says: the roles on the server (one query,
as the stack's admin) and the dev stack's Docker objects (the `docker` CLI,
as `pulumi up` uses the same engine)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from naapdb.recover.errors import RecoverError

Runner = Callable[..., subprocess.CompletedProcess[str]]


def existing_roles(connection: Any, role_names: Collection[str]) -> frozenset[str]:
    """Which of `role_names` exist on the server."""
    rows = connection.execute(
        "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)", (sorted(role_names),)
    ).fetchall()
    return frozenset(str(row[0]) for row in rows)


def create_placeholders(connection: Any, role_names: Collection[str]) -> None:
    """Empty NOLOGIN roles of these names, in one transaction."""
    from psycopg import sql

    with connection.transaction():
        for name in sorted(role_names):
            connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))


@dataclass(frozen=True)
class DockerObject:
    """A container or network of the Docker engine: its id (what `pulumi
    import` takes) and its labels (whose stack it is)."""

    id: str
    labels: dict[str, str]


def docker_object(kind: str, name: str, run: Runner = subprocess.run) -> DockerObject | None:
    """The container or network named `name`, or None when there is none."""
    try:
        result = run(
            ["docker", "inspect", "--type", kind, name],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        raise RecoverError(
            "docker: command not found; recover reads the dev stack's containers with the "
            "docker CLI, as `pulumi up` uses its engine"
        ) from None
    if result.returncode != 0:
        if "no such" in result.stderr.lower():
            return None
        raise RecoverError(f"`docker inspect --type {kind} {name}` failed: {result.stderr.strip()}")
    try:
        found = json.loads(result.stdout)[0]
    except (json.JSONDecodeError, IndexError, KeyError, TypeError):
        raise RecoverError(f"`docker inspect --type {kind} {name}` printed no object") from None
    labels = (found.get("Config") or {}).get("Labels") if kind == "container" else None
    labels = labels if labels is not None else found.get("Labels")
    return DockerObject(id=str(found["Id"]), labels=dict(labels or {}))

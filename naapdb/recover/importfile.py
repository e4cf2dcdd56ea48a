"""The file `pulumi import --file` takes (Pulumi's `importFile`): each
adopted object as the resource the program declares for it, with the name,
parent and provider the program gives it, so that the next `pulumi up` finds
it in the state under its own URN and only updates what differs.

- `nameTable` maps the names used as parents and providers to the URNs of
  what the state already holds (the admin provider, the components);
- `resources` lists the missing components on the way (`component: true`,
  parents first) and then each object with its id: a role's name, a Docker
  object's id. Roles go through the stack's admin provider, which must be in
  the state; Docker objects through the default docker provider of the
  version the program's SDK asks for, so its URN is the program's too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from naapdb import urns
from naapdb.recover.errors import RecoverError
from naapdb.recover.expected import Adoptable
from naapdb.recover.state import StackState


@dataclass(frozen=True)
class Adoption:
    """An object to adopt, and the id `pulumi import` reads it by."""

    what: Adoptable
    id: str


def import_file(
    adoptions: Sequence[Adoption],
    state: StackState,
    stack: str,
    project: str,
    docker_version: str | None = None,
) -> dict[str, Any]:
    """The import file for `adoptions`, on top of `state`."""
    name_table: dict[str, str] = {}
    resources: list[dict[str, Any]] = []
    nodes = tuple(adoption.what.node for adoption in adoptions)
    missing = [n for n in urns.ancestors(nodes) if n.urn(stack, project) not in state]
    for node in missing:
        component = {"type": node.type, "name": node.name, "component": True}
        resources.append({**component, **_parent(node)})
    # The parents the entries name that the state already holds.
    for node in (*missing, *nodes):
        if node.parent is not None and node.parent.urn(stack, project) in state:
            name_table[node.parent.name] = node.parent.urn(stack, project)
    provider = urns.admin_provider()
    if any(adoption.what.uses_admin_provider for adoption in adoptions):
        provider_urn = provider.urn(stack, project)
        if provider_urn not in state:
            raise RecoverError(
                f"the state has no admin provider ({provider_urn}): roles cannot be imported "
                "before it is created"
            )
        name_table[provider.name] = provider_urn
    for adoption in adoptions:
        node = adoption.what.node
        entry: dict[str, Any] = {"type": node.type, "name": node.name, "id": adoption.id}
        entry.update(_parent(node))
        if adoption.what.uses_admin_provider:
            entry["provider"] = provider.name
        elif docker_version:
            entry["version"] = docker_version
        resources.append(entry)
    return {"nameTable": name_table, "resources": resources}


def _parent(node: urns.Node) -> dict[str, str]:
    return {"parent": node.parent.name} if node.parent else {}

"""What the program declares whose re-creation fails when its object already
exists, so that a crashed update's leftovers stop the next `pulumi up`:

- every role of the plan (`CREATE ROLE` fails on "already exists");
- the dev server's container, and with a container pooler its network and
  the pooler's container (Docker refuses a second object of one name).

Everything else the program declares on these stacks is created again
without harm: schemas (`if_not_exists`), grants and default privileges
(revoke, then grant), the data volume (`docker volume create` returns the
one of that name), the image (pulled or found), the passwords (generated
again; `pulumi up` then sets them on the adopted roles), and the commands
(the adoption and the push are idempotent). prod's AWS objects are not
covered: prod keeps its checkpoints (docs/recovery.md says why)."""

from __future__ import annotations

from dataclasses import dataclass

from naapdb import names, urns
from naapdb.pooler import ContainerPooler
from naapdb.settings import ContainerServer, ExternalServer, StackSettings

ROLE = "role"
CONTAINER = "container"
NETWORK = "network"


@dataclass(frozen=True)
class Adoptable:
    """A resource of the program and the object it makes: its kind and the
    name the object has on the server or the Docker engine."""

    node: urns.Node
    kind: str
    object: str

    @property
    def uses_admin_provider(self) -> bool:
        """Roles go through the stack's postgresql provider; Docker objects
        through the default docker provider."""
        return self.kind == ROLE


def roles(settings: StackSettings) -> list[Adoptable]:
    return [Adoptable(urns.role(role), ROLE, role.name) for role in settings.plan.roles]


def docker_objects(settings: StackSettings) -> list[Adoptable]:
    """The dev stack's fixed-name Docker objects (none for other server kinds)."""
    server = settings.server
    if not isinstance(server, ContainerServer):
        return []
    stack = settings.stack
    found = [
        Adoptable(
            urns.server_child(urns.CONTAINER_TYPE, urns.SERVER_CONTAINER),
            CONTAINER,
            names.server_container_name(stack, server.container_name),
        )
    ]
    pooler = settings.pooler
    if isinstance(pooler, ContainerPooler):
        found += [
            Adoptable(
                urns.server_child(urns.NETWORK_TYPE, urns.SERVER_NETWORK),
                NETWORK,
                names.pooler_network_name(stack),
            ),
            Adoptable(
                urns.pooler_container(),
                CONTAINER,
                names.pooler_container_name(stack, pooler.container_name),
            ),
        ]
    return found


def server_chain(settings: StackSettings) -> tuple[urns.Node, ...] | None:
    """What a targeted `pulumi up` creates to put the admin provider in a
    state that lacks it (a crashed first update), for the server kinds that
    skip checkpoints; None for RDS (prod keeps checkpoints, so its provider is
    saved before any role exists)."""
    if isinstance(settings.server, ContainerServer):
        return urns.container_server_chain(
            with_network=isinstance(settings.pooler, ContainerPooler)
        )
    if isinstance(settings.server, ExternalServer):
        return urns.external_server_chain()
    return None

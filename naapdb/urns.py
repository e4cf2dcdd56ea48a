"""The names and URNs `pulumi up` gives the resources that `recover` must be
able to name: the components on the way to every role, the roles, the admin
provider, and the dev stack's fixed-name Docker objects.

The components declare their resources with these names, and `recover`
predicts the URNs of what a crashed update may have created from the same
functions, so the two cannot drift apart; tests/components/test_urns.py
checks every URN predicted here against what the program registers under
mocks, for each server kind. A URN is
`urn:pulumi:<stack>::<project>::<parent types, $-joined><type>::<name>`,
the root Stack's type left out (Pulumi's `resource.NewURN`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from naapdb.plan import Role

# The NaapDatabase component's name (`__main__.py`): every name below starts with it.
ROOT = "naap"

DATABASE_TYPE = "naap:database:NaapDatabase"
SERVER_TYPE = "naap:database:DatabaseServer"
ACCESS_TYPE = "naap:database:DatabaseAccess"
SCHEMA_ACCESS_TYPE = "naap:database:SchemaAccess"
POOLER_TYPE = "naap:database:ConnectionPooler"
STACK_TYPE = "pulumi:pulumi:Stack"

ADMIN_PROVIDER_TYPE = "pulumi:providers:postgresql"
ROLE_TYPE = "postgresql:index/role:Role"
GRANT_TYPE = "postgresql:index/grant:Grant"
DEFAULT_PRIVILEGES_TYPE = "postgresql:index/defaultPrivileges:DefaultPrivileges"
CONTAINER_TYPE = "docker:index/container:Container"
NETWORK_TYPE = "docker:index/network:Network"
VOLUME_TYPE = "docker:index/volume:Volume"
IMAGE_TYPE = "docker:index/remoteImage:RemoteImage"
RANDOM_PASSWORD_TYPE = "random:index/randomPassword:RandomPassword"
COMMAND_TYPE = "command:local:Command"

# What each component calls its children (the suffix after its own name).
SERVER = "server"
ACCESS = "access"
POOLER = "pooler"
SERVER_IMAGE = "image"
SERVER_VOLUME = "data"
SERVER_PASSWORD = "admin-password"
SERVER_NETWORK = "network"
SERVER_CONTAINER = "container"
SERVER_PASSWORD_SYNC = "admin-password-sync"
ADMIN_PROVIDER = "admin"
POOLER_CONTAINER = "container"


@dataclass(frozen=True)
class Node:
    """One resource of the program's tree: its type, its name, its parent
    (None: the stack)."""

    type: str
    name: str
    parent: Node | None = None

    def lineage(self) -> tuple[Node, ...]:
        """Its ancestors from the top, then itself."""
        chain: list[Node] = []
        node: Node | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        return tuple(reversed(chain))

    def urn(self, stack: str, project: str) -> str:
        types = "$".join(node.type for node in self.lineage())
        return f"urn:pulumi:{stack_name(stack)}::{project}::{types}::{self.name}"


def stack_name(stack: str) -> str:
    """The name a URN carries: `org/project/dev` is `dev`."""
    return stack.rsplit("/", 1)[-1]


def child_name(parent: str, suffix: str) -> str:
    """How a component names a child: its own name, a hyphen, what the child is."""
    return f"{parent}-{suffix}"


def role_name(scope: str, role: str) -> str:
    """A Role resource's name in the component `scope` (DatabaseAccess or a SchemaAccess)."""
    return child_name(scope, f"role-{role}")


def database() -> Node:
    return Node(DATABASE_TYPE, ROOT)


def server() -> Node:
    return Node(SERVER_TYPE, child_name(ROOT, SERVER), database())


def server_child(type_: str, suffix: str) -> Node:
    top = server()
    return Node(type_, child_name(top.name, suffix), top)


def admin_provider() -> Node:
    """The postgresql provider every access resource goes through."""
    return server_child(ADMIN_PROVIDER_TYPE, ADMIN_PROVIDER)


def access() -> Node:
    return Node(ACCESS_TYPE, child_name(ROOT, ACCESS), database())


def schema_access(schema: str) -> Node:
    top = access()
    return Node(SCHEMA_ACCESS_TYPE, child_name(top.name, schema), top)


def role(role: Role) -> Node:
    """A role's resource: in its schema's SchemaAccess, or (no schema: the
    platform's roles and the login identities) in DatabaseAccess."""
    scope = schema_access(role.schema) if role.schema else access()
    return Node(ROLE_TYPE, role_name(scope.name, role.name), scope)


def pooler() -> Node:
    return Node(POOLER_TYPE, child_name(ROOT, POOLER), database())


def pooler_container() -> Node:
    top = pooler()
    return Node(CONTAINER_TYPE, child_name(top.name, POOLER_CONTAINER), top)


def container_server_chain(with_network: bool) -> tuple[Node, ...]:
    """What the dev server's admin provider needs, with the provider last:
    a targeted `pulumi up` of exactly these creates the provider (and the
    components above it) without creating anything of the access layer."""
    children = [
        server_child(IMAGE_TYPE, SERVER_IMAGE),
        server_child(VOLUME_TYPE, SERVER_VOLUME),
        server_child(RANDOM_PASSWORD_TYPE, SERVER_PASSWORD),
        *([server_child(NETWORK_TYPE, SERVER_NETWORK)] if with_network else []),
        server_child(CONTAINER_TYPE, SERVER_CONTAINER),
        server_child(COMMAND_TYPE, SERVER_PASSWORD_SYNC),
    ]
    return (database(), server(), *children, admin_provider())


def external_server_chain() -> tuple[Node, ...]:
    """The same for an existing server: nothing but the provider."""
    return (database(), server(), admin_provider())


def ancestors(nodes: Iterator[Node] | tuple[Node, ...]) -> tuple[Node, ...]:
    """Every component above `nodes`, each once, parents before children."""
    seen: dict[Node, None] = {}
    for node in nodes:
        for above in node.lineage()[:-1]:
            seen.setdefault(above, None)
    return tuple(seen)

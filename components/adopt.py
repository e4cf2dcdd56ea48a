"""`OwnershipAdoption`: hands every object of each schema to its schema's
owner, as the server's admin, once the access layer exists and before the
schema push (`python -m naapdb adopt`, `naapdb.adopt`).

It is what makes two paths need no hand work: a database deployed before
each schema had an owner of its own (every object owned by `naap_owner`),
and `pulumi up` after `pulumi destroy` kept the schemas (every object
handed to the admin, the groups' rights dropped). Neither has a
pulumi-postgresql resource: they are objects the push created, which no
resource declares.

- when it runs: `triggers` hold the server's identity and the schemas'
  owners, so it runs on the first `up` of a stack (or after a destroy), when
  a schema or its owner is new, and never again while nothing changed;
- how it connects: the admin's URL, in a secret `environment`, never on the
  command line; it prints the statements it ran (object names, never the URL).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pulumi
from pulumi_command import local

from components.credentials import connection_url
from components.push import naapdb_command, naapdb_hook, portable
from components.server import DatabaseServer
from naapdb.settings import StackSettings

ADOPT_TYPE = "naap:database:OwnershipAdoption"


class OwnershipAdoption(pulumi.ComponentResource):
    """`python -m naapdb adopt` as the admin, after the access layer."""

    command: local.Command

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        access_resources: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(ADOPT_TYPE, name, None, opts)
        self.owners_hash = owners_hash(settings)
        self.command = naapdb_hook(
            f"{name}-command",
            self,
            naapdb_command("adopt", settings.stack),
            _admin_environment(server),
            [self.owners_hash, server.identity],
            access_resources,
        )
        self.register_outputs({"owners_hash": self.owners_hash})


def owners_hash(settings: StackSettings) -> str:
    """sha256 of every schema and its owner: what changes when there may be
    something new to adopt."""
    owners = [[schema.name, schema.owner] for schema in settings.plan.schemas]
    return hashlib.sha256(json.dumps(owners).encode()).hexdigest()


def _admin_environment(server: DatabaseServer) -> pulumi.Output[dict[str, str]]:
    """The admin's URL (secret), verifying the server as the provider does."""
    sslmode = server.sslmode
    root = portable(Path(server.sslrootcert)) if server.sslrootcert else None
    url = pulumi.Output.all(
        server.admin_username, server.admin_password, server.host, server.port, server.database
    ).apply(lambda args: connection_url(args[0], args[1], args[2], args[3], args[4], sslmode, root))
    return pulumi.Output.secret(url.apply(lambda value: {"DATABASE_URL": value}))

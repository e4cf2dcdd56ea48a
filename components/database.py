"""`NaapDatabase`: the whole database of one stack, composed from one
component per concern (server, credentials, access, schema push)."""

from __future__ import annotations

import pulumi

from components.credentials import Credentials
from components.server import DatabaseServer
from naapdb.settings import StackSettings


class NaapDatabase(pulumi.ComponentResource):
    """The server, its credentials, every schema's access and the push."""

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("naap:database:NaapDatabase", name, None, opts)
        self.settings = settings
        child = pulumi.ResourceOptions(parent=self)
        self.server = DatabaseServer(f"{name}-server", settings, child)
        self.credentials = Credentials(f"{name}-credentials", settings, child)
        self.register_outputs({"host": self.server.host, "port": self.server.port})


def export_outputs(database: NaapDatabase) -> None:
    """The stack outputs: where the database is and what it holds; anything
    carrying a credential is secret."""
    plan = database.settings.plan
    pulumi.export("host", database.server.host)
    pulumi.export("port", database.server.port)
    pulumi.export("database", database.server.database)
    pulumi.export("sslmode", database.server.sslmode)
    pulumi.export("schemas", [schema.name for schema in plan.schemas])
    pulumi.export("login_roles", [role.name for role in plan.login_roles])

"""`NaapDatabase`: the whole database of one stack, composed from one
component per concern (server, credentials, access, schema push)."""

from __future__ import annotations

import pulumi

from components.access import DatabaseAccess
from components.adopt import OwnershipAdoption
from components.credentials import Credentials
from components.push import SchemaPush
from components.rotation import PasswordRotation
from components.server import DatabaseServer
from naapdb.plan import Rotation
from naapdb.pushkey import PUSH_KEY_OUTPUT
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
        self.credentials = Credentials(f"{name}-credentials", settings, self.server, child)
        self.access = DatabaseAccess(
            f"{name}-access",
            settings,
            self.server.provider,
            {**self.credentials.passwords, **self.credentials.push_passwords},
            child,
        )
        self.rotation: PasswordRotation | None = None
        if settings.credentials.rotation is Rotation.ALTERNATING:
            # Switching rotation on tests a login: after the roles and grants.
            self.rotation = PasswordRotation(
                f"{name}-rotation",
                settings,
                self.server,
                self.credentials.secret_arns,
                ready_for=self.access.ready_for,
                opts=child,
            )
        # Every object of a schema to its owner (an old deployment, or one
        # brought back after `pulumi destroy`), before any file runs.
        # Waiting for the frontier is waiting for every access resource,
        # without handing the SDK 15 dependencies a plugin.
        self.adoption = OwnershipAdoption(
            f"{name}-adopt", settings, self.server, self.access.frontier, child
        )
        self.push: SchemaPush | None = None
        if settings.push.mode != "off":
            self.push = SchemaPush(
                f"{name}-push",
                settings,
                self.server,
                self.credentials,
                [self.adoption.command],
                child,
            )
        self.register_outputs({"host": self.server.host, "port": self.server.port})


def export_outputs(database: NaapDatabase) -> None:
    """The stack outputs: where the database is and what it holds; anything
    carrying a credential is secret."""
    plan = database.settings.plan
    pulumi.export("host", database.server.host)
    pulumi.export("port", database.server.port)
    pulumi.export("database", database.server.database)
    pulumi.export("sslmode", database.server.sslmode)
    if database.rotation is not None:
        # What `python -m naapdb rotate` trusts (NAAPDB_DATABASE_ENDPOINT).
        pulumi.export("database_endpoint", database.rotation.database_endpoint)
        pulumi.export("rotation_alarm_topic_arn", database.rotation.alarm_topic_arn)
    pulumi.export("schemas", [schema.name for schema in plan.schemas])
    pulumi.export("login_roles", [role.name for role in plan.login_roles])
    pulumi.export("connection_urls", database.credentials.connection_urls)
    # For a push run by hand (NAAPDB_PUSH_KEY): each schema's push login's
    # password derives from it.
    pulumi.export(PUSH_KEY_OUTPUT, database.credentials.push_key)
    if database.credentials.secret_arns:
        pulumi.export("secret_arns", database.credentials.secret_arns)

"""The one PostgreSQL server the platform runs on, chosen by
`naap-db:server.kind`, and the `postgresql.Provider` connected to it.

Every kind exposes the same outputs, so the access layer never knows which
server it got: host, port, database, admin username and password (secret),
the sslmode clients must use, and the provider, which depends on whatever
makes the server ready."""

from __future__ import annotations

import pulumi
import pulumi_postgresql as postgresql

from components.settings import admin_password
from naapdb import names
from naapdb.settings import ExternalServer, StackSettings


class DatabaseServer(pulumi.ComponentResource):
    """The server and an admin provider for it."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    sslmode: str
    superuser: bool
    provider: postgresql.Provider

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("naap:database:DatabaseServer", name, None, opts)
        server = settings.server
        if isinstance(server, ExternalServer):
            self._external(server)
        else:
            raise pulumi.RunError(f"naap-db:server.kind: {server.kind} is not supported yet")
        self.provider = postgresql.Provider(
            f"{name}-admin",
            host=self.host,
            port=self.port,
            database=self.database,
            username=self.admin_username,
            password=self.admin_password,
            sslmode=self.sslmode,
            superuser=self.superuser,
            connect_timeout=15,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._ready),
        )
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "database": self.database,
                "admin_username": self.admin_username,
                "admin_password": self.admin_password,
            }
        )

    def _external(self, server: ExternalServer) -> None:
        """An existing server: nothing to create, everything from config."""
        password = admin_password()
        assert password is not None  # settings refuse an external server without it
        self.host = pulumi.Output.from_input(server.host)
        self.port = pulumi.Output.from_input(server.port)
        self.database = pulumi.Output.from_input(server.database or names.DATABASE)
        self.admin_username = pulumi.Output.from_input(server.admin_user)
        self.admin_password = pulumi.Output.secret(password)
        self.sslmode = server.sslmode
        self.superuser = server.superuser
        self._ready: list[pulumi.Resource] = []

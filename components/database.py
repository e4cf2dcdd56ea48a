"""`NaapDatabase`: the whole database of one stack, composed from one
component per concern (server, credentials, access, schema push, and, when
the stack declares them, a connection pooler and read replicas)."""

from __future__ import annotations

import pulumi

from components.access import DatabaseAccess
from components.adopt import OwnershipAdoption
from components.credentials import Credentials
from components.pooler import ConnectionPooler
from components.push import SchemaPush
from components.replicas import ReadReplicas
from components.rotation import PasswordRotation
from components.server import DatabaseServer
from components.urls import client_urls, read_urls
from naapdb.plan import Rotation
from naapdb.pushkey import PUSH_KEY_OUTPUT
from naapdb.settings import StackSettings
from naapdb.urns import ACCESS, DATABASE_TYPE, POOLER, SERVER, child_name


class NaapDatabase(pulumi.ComponentResource):
    """The server, its credentials, every schema's access and the push."""

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(DATABASE_TYPE, name, None, opts)
        self.settings = settings
        child = pulumi.ResourceOptions(parent=self)
        self.server = DatabaseServer(child_name(name, SERVER), settings, child)
        self.credentials = Credentials(f"{name}-credentials", settings, self.server, child)
        self.access = DatabaseAccess(
            child_name(name, ACCESS),
            settings,
            self.server.provider,
            {**self.credentials.passwords, **self.credentials.push_passwords},
            child,
        )
        self.pooler: ConnectionPooler | None = None
        if settings.pooler is not None:
            self.pooler = ConnectionPooler(
                child_name(name, POOLER), settings, self.server, self.credentials.passwords, child
            )
        self.replicas: ReadReplicas | None = None
        if settings.replicas:
            self.replicas = ReadReplicas(f"{name}-replicas", settings, self.server, child)
        self.rotation: PasswordRotation | None = None
        if settings.credentials.rotation is Rotation.ALTERNATING:
            # Switching rotation on tests a login: after the roles and grants.
            self.rotation = PasswordRotation(
                f"{name}-rotation",
                settings,
                self.server,
                self.credentials.secret_arns,
                ready_for=self.access.ready_for,
                proxy_secret_prefix=self.pooler.secret_prefix if self.pooler else None,
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
            # Direct to the server, never through the pooler: the push holds
            # a session-level lock and one transaction per file.
            self.push = SchemaPush(
                f"{name}-push",
                settings,
                self.server,
                self.credentials,
                [self.adoption.command],
                child,
            )
        # What `pulumi preview` shows of the connection budget, both sides.
        for line in budget_lines(settings):
            pulumi.log.info(line, resource=self)
        self.register_outputs({"host": self.server.host, "port": self.server.port})


def budget_lines(settings: StackSettings) -> list[str]:
    """The connection budget as `plan` prints it: the server's sum, and
    with a pooler its side and the server's side."""
    lines = [f"connection budget: {settings.budget.describe()}"]
    if settings.pooler_budget is not None:
        lines += [f"connection budget, {side}" for side in settings.pooler_budget.describe()]
    return lines


def export_outputs(database: NaapDatabase) -> None:
    """The stack outputs: where the database is and what it holds; anything
    carrying a credential is secret."""
    settings = database.settings
    plan = settings.plan
    server, credentials = database.server, database.credentials
    pulumi.export("host", server.host)
    pulumi.export("port", server.port)
    pulumi.export("database", server.database)
    pulumi.export("sslmode", server.sslmode)
    if database.rotation is not None:
        # What `python -m naapdb rotate` trusts (NAAPDB_DATABASE_ENDPOINT).
        pulumi.export("database_endpoint", database.rotation.database_endpoint)
        pulumi.export("rotation_alarm_topic_arn", database.rotation.alarm_topic_arn)
    pulumi.export("schemas", [schema.name for schema in plan.schemas])
    pulumi.export("login_roles", [role.name for role in plan.login_roles])
    urls = credentials.connection_urls
    pooler = database.pooler
    if pooler is not None:
        urls = client_urls(
            settings,
            credentials.connection_urls,
            credentials.passwords,
            server.database,
            pooler.host,
            pooler.port,
            pooler.sslmode,
            pooler.sslrootcert,
        )
        # The pooler's address, and what pooling means for clients: said
        # where the pooled URLs are handed out (`dotenv` repeats it).
        pulumi.export(
            "pooler",
            {
                "kind": settings.pooler.kind if settings.pooler else None,
                "host": pooler.host,
                "port": pooler.port,
                "pool_mode": settings.pooler.pool_mode if settings.pooler else None,
                "notes": pooler.notes,
            },
        )
        # Every login's URL straight to the server (the push uses these).
        pulumi.export("direct_urls", credentials.connection_urls)
    pulumi.export("connection_urls", urls)
    # For a push run by hand (NAAPDB_PUSH_KEY): each schema's push login's
    # password derives from it.
    pulumi.export(PUSH_KEY_OUTPUT, credentials.push_key)
    replicas = database.replicas
    if replicas is not None:
        pulumi.export("replica_endpoints", replicas.endpoints)
        pulumi.export(
            "read_urls",
            read_urls(
                settings,
                credentials.passwords,
                replicas.endpoints,
                replicas.port,
                server.database,
                server.sslmode,
                server.client_sslrootcert,
            ),
        )
    if credentials.secret_arns:
        pulumi.export("secret_arns", credentials.secret_arns)

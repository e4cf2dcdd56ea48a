"""`ConnectionPooler`: the pooler of `naap-db:pooler` and the address
application logins connect to through it (`naapdb.pooler`).

- `container` (dev): PgBouncer in a container on the stack's Docker network
  (`components/server.py` puts the server on it), its port published on
  loopback. Its `pgbouncer.ini` and auth file are rendered by
  `naapdb.pgbouncer` and uploaded into the container when it is created:
  the auth file holds SCRAM verifiers, never a password, and is a secret
  input all the same. A new password (an epoch bump) changes the file,
  which replaces this stateless container.
- `rds` (prod): RDS Proxy (`components/proxy.py`).
- `external`: nothing is created; the address comes from config.

Every kind gives the same outputs: where clients connect (host, port,
sslmode, CA bundle) and what the pooling means for them (`notes`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_docker as docker

from components.proxy import RdsProxy
from components.server import DatabaseServer, stack_labels
from naapdb import names, pgbouncer
from naapdb.pooler import (
    RDS_PROXY_PORT,
    ContainerPooler,
    PoolerSettings,
    RdsPooler,
    client_notes,
    pools,
)
from naapdb.settings import StackSettings
from naapdb.urns import POOLER_CONTAINER, POOLER_TYPE, child_name

# Inside the container PgBouncer listens on its usual port.
LISTEN_PORT = 6432
POSTGRES_PORT = 5432


class ConnectionPooler(pulumi.ComponentResource):
    """The pooler, and where application logins reach it."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    sslmode: str
    sslrootcert: str | None
    notes: str
    """What the pool mode means for a client (prepared statements, Prisma)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        passwords: Mapping[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(POOLER_TYPE, name, None, opts)
        pooler = settings.pooler
        assert pooler is not None  # NaapDatabase builds this only for a pooler
        self.sslmode = pooler.sslmode
        self.sslrootcert = pooler.sslrootcert
        self.notes = client_notes(pooler, prepared_statements(pooler))
        if isinstance(pooler, ContainerPooler):
            self._container(name, settings, pooler, server, passwords)
        elif isinstance(pooler, RdsPooler):
            proxy = RdsProxy(
                f"{name}-proxy", settings, server, passwords, pulumi.ResourceOptions(parent=self)
            )
            self.host = proxy.endpoint
            self.port = pulumi.Output.from_input(RDS_PROXY_PORT)
            self.secret_prefix = proxy.secret_prefix
        else:
            self.host = pulumi.Output.from_input(pooler.host)
            self.port = pulumi.Output.from_input(pooler.port)
        self.register_outputs({"host": self.host, "port": self.port, "notes": self.notes})

    secret_prefix: str | None = None
    """RDS Proxy only: the name prefix of the login secrets it reads, which
    the rotation keeps current (`naapdb.proxy_credentials`)."""

    def _container(
        self,
        name: str,
        settings: StackSettings,
        pooler: ContainerPooler,
        server: DatabaseServer,
        passwords: Mapping[str, pulumi.Output[str]],
    ) -> None:
        assert server.network_name is not None and server.container_name is not None
        plan_pools = pools(settings.plan)
        config = pgbouncer.pgbouncer_ini(
            plan_pools,
            server_host=server.container_name,
            server_port=POSTGRES_PORT,
            listen_addr="0.0.0.0",
            listen_port=LISTEN_PORT,
            pool_mode=pooler.pool_mode,
            max_client_connections=pooler.max_client_connections,
            prepared_statements=prepared_statements(pooler),
        )
        pooled = {pool.login: passwords[pool.login] for pool in plan_pools}
        users: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(**pooled).apply(lambda known: pgbouncer.auth_file(known, plan_pools))
        )
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(
            f"{name}-image", name=pooler.image, keep_locally=True, opts=child
        )
        labels = [
            docker.ContainerLabelArgs(label=key, value=value)
            for key, value in stack_labels(settings.stack).items()
        ]
        container = docker.Container(
            child_name(name, POOLER_CONTAINER),
            name=names.pooler_container_name(settings.stack, pooler.container_name),
            image=image.image_id,
            # The image's entrypoint would write its own config from the
            # environment; run PgBouncer on the rendered one instead.
            entrypoints=["pgbouncer", pgbouncer.CONFIG_FILE],
            uploads=[
                docker.ContainerUploadArgs(
                    file=pgbouncer.CONFIG_FILE, content=config, permissions="0644"
                ),
                docker.ContainerUploadArgs(
                    file=pgbouncer.AUTH_FILE, content=users, permissions="0644"
                ),
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=LISTEN_PORT,
                    external=pooler.port,
                    ip=pooler.bind_address,
                    protocol="tcp",
                )
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=server.network_name)],
            restart="unless-stopped",
            labels=labels,
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["uploads"],
                # One name, one published port.
                delete_before_replace=True,
            ),
        )
        self.container = container
        self.host = pulumi.Output.from_input(pooler.connect_host)
        self.port = pulumi.Output.from_input(pooler.port)


def prepared_statements(pooler: PoolerSettings) -> bool:
    """Whether the pooler tracks protocol-level prepared statements across
    transactions: PgBouncer 1.21 and later, as the image's tag says; an
    external pooler's version is not naap-db's to know."""
    if isinstance(pooler, ContainerPooler):
        return pgbouncer.supports_prepared_statements(pgbouncer.image_version(pooler.image))
    return False

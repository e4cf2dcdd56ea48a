"""The one PostgreSQL server the platform runs on, chosen by
`naap-db:server.kind`, and the `postgresql.Provider` connected to it.

- `container` (dev): the image, a named data volume kept on destroy, the
  container (loopback port, `pg_isready` healthcheck, `wait`) and a generated
  admin password.
- `rds` (prod): a protected RDS for PostgreSQL instance whose master password
  RDS keeps in Secrets Manager, its parameter group (TLS forced, SCRAM, DDL
  and connections logged), subnet group, security groups, log groups and
  monitoring role (`components/rds.py`); the admin connection verifies the
  server's certificate (`verify-full`, the RDS CA bundle).
- `external`: an existing server; nothing is created.

Every kind exposes the same outputs, so the access layer never knows which
server it got: host, port, database, admin username and password (secret),
the sslmode clients must use, whether the admin is a superuser, a stable
`identity` of the server, and the provider, which depends on whatever makes
the server ready."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker as docker
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.rds import (
    RDS_LOG_EXPORTS,
    RDS_PARAMETERS,
    ca_bundle,
    clients_may_reach,
    final_snapshot_name,
    log_groups,
    monitoring_role,
    security_group,
)
from components.settings import admin_password
from naapdb import names, scram, tlsprobe, urns
from naapdb.limits import POSTGRES_DEFAULT_MAX_CONNECTIONS
from naapdb.names import physical_name, stack_labels
from naapdb.pooler import ContainerPooler
from naapdb.rds_ca import CheckedBundle
from naapdb.settings import ContainerServer, ExternalServer, RdsServer, StackSettings

POSTGRES_PORT = 5432
DATA_DIR = "/var/lib/postgresql/data"
# Seconds the admin provider waits for a connection before it fails.
CONNECT_TIMEOUT = 15
# Free tier of Performance Insights.
PERFORMANCE_INSIGHTS_DAYS = 7
# Seconds PostgreSQL gets to shut down cleanly before Docker kills it; a kill
# would leave the retained volume needing crash recovery.
STOP_GRACE_SECONDS = 30


class DatabaseServer(pulumi.ComponentResource):
    """The server and an admin provider for it."""

    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]
    """Secret."""
    sslmode: str
    """The sslmode every client of this server uses (`disable` for the
    container, `verify-full` for rds)."""
    sslrootcert: str | None
    """The CA bundle the admin provider verifies the server with (rds)."""
    ca_bundle: CheckedBundle | None
    """That bundle, checked against the pin (rds): the push and the rotation
    Lambda verify the server with it too."""
    client_sslrootcert: str | None
    """Where clients keep that bundle: the connection URLs' `sslrootcert` (rds)."""
    superuser: bool
    """Whether the admin is a superuser (False on RDS: rds_superuser is not one)."""
    identity: pulumi.Output[str]
    """Changes exactly when the server (and so its data) is a different one:
    the container id, the RDS resource id, or host:port/database."""
    provider: postgresql.Provider

    # rds only (None / () otherwise): what the rotation Lambda needs.
    master_secret_arn: pulumi.Output[str] | None
    """ARN of the Secrets Manager secret in which RDS keeps the master login."""
    vpc_id: str | None
    subnet_ids: tuple[str, ...]
    security_group_id: pulumi.Output[str] | None
    """The instance's own security group (its ingress is managed inline here:
    do not add rules to it; attach `client_security_group_id` instead)."""
    client_security_group_id: pulumi.Output[str] | None
    """A security group whose members may reach the instance on 5432 (its only
    egress rule); attach it to anything in the VPC that must connect."""
    instance: aws.rds.Instance | None
    """The RDS instance (rds only): what a proxy targets and replicas copy
    (its parameter group, security groups and monitoring role included)."""

    # container with a container pooler only: where PgBouncer reaches PostgreSQL.
    network_name: pulumi.Output[str] | None
    """The stack's Docker network, on which the server is `container_name`."""
    container_name: str | None

    def __init__(
        self, name: str, settings: StackSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(urns.SERVER_TYPE, name, None, opts)
        self._ready: list[pulumi.Resource] = []
        self.master_secret_arn = None
        self.vpc_id = None
        self.subnet_ids = ()
        self.security_group_id = None
        self.client_security_group_id = None
        self.instance = None
        self.network_name = None
        self.container_name = None
        self.sslrootcert = None
        self.ca_bundle = None
        self.client_sslrootcert = None
        server = settings.server
        if isinstance(server, ContainerServer):
            self._container(name, settings, server)
        elif isinstance(server, RdsServer):
            self._rds(name, settings, server)
        else:
            self._external(server, settings.stack)
        self.provider = postgresql.Provider(
            urns.child_name(name, urns.ADMIN_PROVIDER),
            host=self.host,
            port=self.port,
            database=self.database,
            username=self.admin_username,
            password=self.admin_password,
            sslmode=self.sslmode,
            sslrootcert=self.sslrootcert,
            superuser=self.superuser,
            connect_timeout=CONNECT_TIMEOUT,
            # The admin's pool: what the connection budget counts for it.
            max_connections=settings.limits.admin_connections,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._ready),
        )
        self.register_outputs(
            {
                "host": self.host,
                "port": self.port,
                "database": self.database,
                "admin_username": self.admin_username,
                "admin_password": self.admin_password,
                "identity": self.identity,
            }
        )

    def _container(self, name: str, settings: StackSettings, server: ContainerServer) -> None:
        """PostgreSQL on the local Docker engine, published on loopback only."""
        base = physical_name(settings.stack)
        container_name = names.server_container_name(settings.stack, server.container_name)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(
            urns.child_name(name, urns.SERVER_IMAGE),
            name=server.image,
            # `pulumi destroy` keeps the image, so the next `up` needs no download.
            keep_locally=True,
            opts=child,
        )
        volume = docker.Volume(
            urns.child_name(name, urns.SERVER_VOLUME),
            name=f"{base}-data",
            labels=[
                docker.VolumeLabelArgs(label=key, value=value)
                for key, value in stack_labels(settings.stack).items()
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                retain_on_delete=server.keep_data_on_destroy,
                protect=settings.production,
            ),
        )
        credentials = settings.credentials
        password = random.RandomPassword(
            urns.child_name(name, urns.SERVER_PASSWORD),
            length=credentials.password_length,
            # Letters and digits: safe in a URL, a libpq string, a shell and SQL.
            special=False,
            keepers=credentials.keepers(server.admin_user),
            opts=child,
        )
        secret_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        networks = None
        if isinstance(settings.pooler, ContainerPooler):
            # PgBouncer reaches this container by name on the stack's network.
            network = pooler_network(
                urns.child_name(name, urns.SERVER_NETWORK), settings.stack, self
            )
            self.network_name, self.container_name = network.name, container_name
            networks = [
                docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[container_name])
            ]
        container = docker.Container(
            urns.child_name(name, urns.SERVER_CONTAINER),
            name=container_name,
            image=image.image_id,
            command=container_command(settings.budget.ceiling.max_connections),
            envs=container_envs(server, secret_password),
            ports=[
                docker.ContainerPortArgs(
                    internal=POSTGRES_PORT,
                    external=server.port,
                    ip=server.bind_address,
                    protocol="tcp",
                )
            ],
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=DATA_DIR)],
            networks_advanced=networks,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=healthcheck_command(server.admin_user),
                interval="2s",
                timeout="5s",
                retries=30,
                start_period="10s",
            ),
            restart="unless-stopped",
            # `up` returns (and the provider connects) only once the healthcheck passes.
            wait=True,
            wait_timeout=server.wait_timeout,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            labels=[
                docker.ContainerLabelArgs(label=key, value=value)
                for key, value in stack_labels(settings.stack).items()
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["envs"],
                # One name, one port, one data directory: the old container
                # must be gone before its replacement starts.
                delete_before_replace=True,
            ),
        )
        sync = command.local.Command(
            urns.child_name(name, urns.SERVER_PASSWORD_SYNC),
            create=sync_password_command(container_name, server.admin_user),
            stdin=SYNC_PASSWORD_SQL,
            # The verifier, not the password: the ALTER ROLE never carries it.
            environment=pulumi.Output.secret(
                {
                    SYNC_PASSWORD_ENV: secret_password.apply(
                        lambda value: scram.verifier(value, server.admin_user)
                    )
                }
            ),
            triggers=[secret_password, container.id],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
        )
        self.host = pulumi.Output.from_input(server.connect_host)
        self.port = pulumi.Output.from_input(server.port)
        self.database = pulumi.Output.from_input(names.DATABASE)
        self.admin_username = pulumi.Output.from_input(server.admin_user)
        self.admin_password = secret_password
        # The stock image has no TLS; set explicitly so PGSSLMODE cannot change it.
        self.sslmode = "disable"
        self.superuser = True
        self.identity = container.id
        self._ready = [container, sync]

    def _rds(self, name: str, settings: StackSettings, server: RdsServer) -> None:
        """A managed instance in private subnets; its master password never
        leaves AWS except into the provider, read at deploy time."""
        base = physical_name(settings.stack)
        tags = stack_tags(settings.stack)
        # Before anything is created: a missing or unpinned bundle stops the program.
        self.ca_bundle = ca_bundle(server)
        self.sslrootcert = str(self.ca_bundle.path)
        # Protection per stack: everything in production; the instance always.
        child = pulumi.ResourceOptions(parent=self, protect=settings.production)
        # Name prefixes: a replacement (a new major, a new description) is
        # created before the old one is deleted, so the instance always has one.
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            name_prefix=f"{base}-{server.parameter_group_family}-",
            family=server.parameter_group_family,
            description=(
                f"naap-db {settings.stack}: TLS only, SCRAM passwords, DDL and connections logged"
            ),
            parameters=[
                *(
                    aws.rds.ParameterGroupParameterArgs(name=key, value=value)
                    for key, value in RDS_PARAMETERS.items()
                ),
                # The ceiling the connection budget was checked against,
                # exactly (RDS's own default uses memory net of the OS's
                # share); static, so it takes effect at the next reboot.
                aws.rds.ParameterGroupParameterArgs(
                    name="max_connections",
                    value=str(settings.budget.ceiling.max_connections),
                    apply_method="pending-reboot",
                ),
            ],
            tags=tags,
            opts=child,
        )
        subnets = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name_prefix=f"{base}-",
            description=f"naap-db {settings.stack}",
            subnet_ids=list(server.subnet_ids),
            tags=tags,
            opts=child,
        )
        clients = aws.ec2.SecurityGroup(
            f"{name}-clients",
            name_prefix=f"{base}-clients-",
            description=f"Members may connect to the naap-db {settings.stack} database",
            vpc_id=server.vpc_id,
            tags=tags,
            opts=child,
        )
        database_group = security_group(
            f"{name}-sg",
            f"{base}-db-",
            f"naap-db {settings.stack}: PostgreSQL from allowed networks only",
            server,
            clients.id,
            tags,
            child,
        )
        clients_may_reach(
            f"{name}-clients-to-db", clients.id, database_group.id, "instance", tags, child
        )
        # Declared before the instance, so RDS exports into groups with a
        # retention (and a key) instead of creating them without.
        logs = log_groups(name, base, server, tags, child)
        monitoring_arn, monitoring_ready = monitoring_role(name, server, tags, child)
        instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=base,
            engine="postgres",
            engine_version=server.engine_version,
            instance_class=server.instance_class,
            allocated_storage=server.allocated_storage,
            max_allocated_storage=server.max_allocated_storage,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=server.kms_key_id,
            db_name=names.DATABASE,
            port=POSTGRES_PORT,
            username=server.admin_user,
            manage_master_user_password=True,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[database_group.id],
            parameter_group_name=parameters.name,
            multi_az=server.multi_az,
            publicly_accessible=server.publicly_accessible,
            deletion_protection=server.deletion_protection,
            backup_retention_period=server.backup_retention_days,
            skip_final_snapshot=server.skip_final_snapshot,
            final_snapshot_identifier=final_snapshot_name(name, base, child),
            copy_tags_to_snapshot=True,
            performance_insights_enabled=server.performance_insights,
            performance_insights_retention_period=(
                PERFORMANCE_INSIGHTS_DAYS if server.performance_insights else None
            ),
            enabled_cloudwatch_logs_exports=list(RDS_LOG_EXPORTS),
            backup_window=server.backup_window,
            maintenance_window=server.maintenance_window,
            monitoring_interval=server.monitoring_interval,
            monitoring_role_arn=monitoring_arn,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=True, depends_on=[*logs, *monitoring_ready]
            ),
        )
        self.master_secret_arn = instance.master_user_secrets.apply(_first_secret_arn)
        # Read at every deploy: RDS rotates the master secret on its own schedule.
        version = aws.secretsmanager.get_secret_version_output(
            secret_id=self.master_secret_arn, opts=pulumi.InvokeOptions(parent=self)
        )
        self.host = instance.address
        self.port = instance.port
        self.database = pulumi.Output.from_input(names.DATABASE)
        self.admin_username = pulumi.Output.from_input(server.admin_user)
        self.admin_password = pulumi.Output.secret(version.secret_string.apply(_password_of))
        # The certificate and its host name are checked against the RDS CA.
        self.sslmode = "verify-full"
        self.client_sslrootcert = server.client_ssl_root_cert
        self.superuser = False
        self.identity = instance.resource_id
        self.vpc_id = server.vpc_id
        self.subnet_ids = server.subnet_ids
        self.security_group_id = database_group.id
        self.client_security_group_id = clients.id
        self.instance = instance
        self._ready = [instance]

    def _external(self, server: ExternalServer, stack: str) -> None:
        """An existing server: nothing to create, everything from config. An
        update first asks it whether it offers the TLS `sslmode` needs."""
        if not pulumi.runtime.is_dry_run():
            problem = tlsprobe.sslmode_problem(
                server.host, server.port, server.sslmode, stack, CONNECT_TIMEOUT
            )
            if problem:
                raise pulumi.RunError(f"naap-db:server.sslmode: {problem}")
        password = admin_password()
        assert password is not None  # settings refuse an external server without it
        self.host = pulumi.Output.from_input(server.host)
        self.port = pulumi.Output.from_input(server.port)
        self.database = pulumi.Output.from_input(server.database or names.DATABASE)
        self.admin_username = pulumi.Output.from_input(server.admin_user)
        self.admin_password = pulumi.Output.secret(password)
        self.sslmode = server.sslmode
        self.superuser = server.superuser
        self.identity = pulumi.Output.from_input(
            f"{server.host}:{server.port}/{server.database or names.DATABASE}"
        )


# The container's data directory keeps the password it was initialised with;
# after a new admin password (an epoch bump) this sets it through the local
# socket (trust inside the container). Its SCRAM verifier travels in the
# docker client's environment, never in argv, and is what the statement
# carries; `\set` with backticks works in every psql.
SYNC_PASSWORD_ENV = "NAAP_ADMIN_PASSWORD"
SYNC_PASSWORD_SQL = (
    f"\\set admin_password `printenv {SYNC_PASSWORD_ENV}`\n"
    "ALTER ROLE CURRENT_USER PASSWORD :'admin_password';\n"
)


def pooler_network(name: str, stack: str, parent: pulumi.Resource) -> docker.Network:
    """A Docker network of the stack, for the pooler container to reach the
    server by name (the default bridge has no names). Only a stack with a
    container pooler has one, so a stack without keeps its container as it
    was; joining it replaces the server container once (its volume stays)."""
    return docker.Network(
        name,
        name=names.pooler_network_name(stack),
        labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in stack_labels(stack).items()],
        opts=pulumi.ResourceOptions(parent=parent),
    )


def stack_tags(stack: str) -> dict[str, str]:
    """AWS tags of every server resource (copied to snapshots)."""
    return {"Project": "naap-db", "Stack": stack, "ManagedBy": "pulumi"}


def container_envs(
    server: ContainerServer, password: pulumi.Output[str]
) -> pulumi.Output[list[str]]:
    """The container's environment, secret as a whole since it holds the password."""
    envs: list[pulumi.Input[str]] = [
        f"POSTGRES_DB={names.DATABASE}",
        f"POSTGRES_USER={server.admin_user}",
        pulumi.Output.concat("POSTGRES_PASSWORD=", password),
        # TCP logins use SCRAM whatever the image's default; the local socket
        # stays trust inside the container (the password sync relies on it).
        "POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256",
    ]
    return pulumi.Output.secret(pulumi.Output.all(*envs))


def container_command(max_connections: int) -> list[str] | None:
    """The image's own command, with the connection ceiling the budget was
    checked against when it is not PostgreSQL's default (None keeps the
    image's, so a stack that never sets it keeps its container)."""
    if max_connections == POSTGRES_DEFAULT_MAX_CONNECTIONS:
        return None
    return ["postgres", "-c", f"max_connections={max_connections}"]


def healthcheck_command(admin_user: str) -> list[str]:
    """`pg_isready` over TCP: during first initialisation the image runs a
    temporary server on the socket only, so a socket check would pass early."""
    return [
        "CMD",
        "pg_isready",
        "-h",
        "127.0.0.1",
        "-p",
        str(POSTGRES_PORT),
        "-U",
        admin_user,
        "-d",
        names.DATABASE,
    ]


def sync_password_command(container_name: str, admin_user: str) -> str:
    """`docker exec` running psql as the admin inside the container; `-e NAME`
    without a value passes the variable from the client's environment."""
    return (
        f"docker exec -i -e {SYNC_PASSWORD_ENV} {container_name} "
        f"psql -v ON_ERROR_STOP=1 -q -U {admin_user} -d {names.DATABASE}"
    )


def _first_secret_arn(secrets: Any) -> str:
    return str(secrets[0].secret_arn) if secrets else ""


def _password_of(secret_string: str) -> str:
    """The `password` of an RDS master secret (JSON with username and password)."""
    return str(json.loads(secret_string)["password"])

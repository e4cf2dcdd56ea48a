"""Typed, validated stack settings: the catalogue, the server, credentials
and the schema push, parsed from a stack's raw `naap-db:*` config.

Both entry points feed this one parser: the Pulumi program (through
`components/settings.py`, from `pulumi.Config`) and the command line (from
`Pulumi.yaml` and `Pulumi.<stack>.yaml`, see `stackfiles`). So `pulumi
preview` and `python -m naapdb plan` fail on bad config with the same message,
before any resource is registered.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from naapdb import names
from naapdb.catalog import CATALOG_KEY, Catalog, parse_catalog
from naapdb.configvalues import camel as _camel  # noqa: F401 (tests/test_readme.py reads it here)
from naapdb.configvalues import check_bind_address, has_pinned_tag
from naapdb.configvalues import check_port as _check_port
from naapdb.configvalues import dataclass_values as _dataclass_values
from naapdb.configvalues import typed as _typed
from naapdb.errors import ConfigError
from naapdb.limits import Budget, LimitSettings, ceiling_for, parse_limit_settings
from naapdb.plan import SCHEMA_MIGRATOR, AccessPlan, Rotation, build_plan
from naapdb.pooler import PoolerBudget, PoolerSettings, parse_pooler, pooler_budget
from naapdb.rds_options import check_rds_operations
from naapdb.replicas import Replica, parse_replicas

NAMESPACE = "naap-db"
SECRET_LOOKING_KEY = re.compile(r"password|secret|token|passphrase", re.IGNORECASE)
ADMIN_PASSWORD_KEY = "adminPassword"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class Secret:
    """Marks a config value that is encrypted (`secure:`); the domain never
    needs its plaintext, only the knowledge that it is secret."""

    def __repr__(self) -> str:
        return "Secret()"


SECRET = Secret()


@dataclass(frozen=True)
class ContainerServer:
    """A PostgreSQL container on the local Docker engine (dev)."""

    kind = "container"
    image: str = "postgres:16"
    port: int = 5432
    bind_address: str = "127.0.0.1"
    admin_user: str = "postgres"
    keep_data_on_destroy: bool = True
    wait_timeout: int = 120
    container_name: str | None = None

    @property
    def connect_host(self) -> str:
        """Where this machine reaches the published port: a wildcard bind
        (0.0.0.0 or ::) is reached on loopback, any other address as is."""
        return "127.0.0.1" if self.bind_address in WILDCARD_ADDRESSES else self.bind_address


@dataclass(frozen=True)
class RdsServer:
    """An Amazon RDS for PostgreSQL instance (prod)."""

    kind = "rds"
    vpc_id: str = ""
    subnet_ids: tuple[str, ...] = ()
    allowed_cidrs: tuple[str, ...] = ()
    allowed_security_group_ids: tuple[str, ...] = ()
    engine_version: str = "16"
    instance_class: str = "db.t4g.medium"
    allocated_storage: int = 20
    max_allocated_storage: int = 100
    multi_az: bool = True
    kms_key_id: str | None = None
    backup_retention_days: int = 7
    admin_user: str = "naap_admin"
    performance_insights: bool = True
    publicly_accessible: bool = False
    skip_final_snapshot: bool = False
    deletion_protection: bool = True
    # Operations (issue 16; checked in naapdb.rds_options).
    backup_window: str | None = None
    maintenance_window: str | None = None
    monitoring_interval: int = 0
    monitoring_role_arn: str | None = None
    log_retention_days: int = 30
    log_kms_key_id: str | None = None
    ca_bundle: str | None = None
    """Another RDS CA bundle than the committed naapdb/rds-ca-bundle.pem (also
    $NAAPDB_RDS_CA_BUNDLE); it must have the pinned digest, or be trusted."""
    trust_ca_bundle: bool = False
    """Trust `ca_bundle` although its digest is not the pinned one (printed
    by every preview)."""
    client_ssl_root_cert: str = "/etc/ssl/certs/rds-global-bundle.pem"
    """Where clients keep that bundle: the `sslrootcert` of the connection URLs."""

    @property
    def major(self) -> int:
        """The PostgreSQL major version (`engineVersion` "16" or "16.4" -> 16)."""
        return int(self.engine_version.split(".")[0])

    @property
    def parameter_group_family(self) -> str:
        """The RDS parameter group family of the major, e.g. postgres16."""
        return f"postgres{self.major}"


@dataclass(frozen=True)
class ExternalServer:
    """An existing server: another cloud's managed PostgreSQL, on-prem, a test server."""

    kind = "external"
    host: str = ""
    port: int = 5432
    database: str = "naap"
    admin_user: str = "postgres"
    sslmode: str = "require"
    superuser: bool = True


ServerSettings = ContainerServer | RdsServer | ExternalServer
SERVER_KINDS: dict[str, type[ContainerServer] | type[RdsServer] | type[ExternalServer]] = {
    "container": ContainerServer,
    "rds": RdsServer,
    "external": ExternalServer,
}
REQUIRED_SERVER_KEYS = {"rds": ("vpcId", "subnetIds"), "external": ("host",)}
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::"})
# A role name PostgreSQL takes unquoted; RDS also reserves names starting `rds`.
ADMIN_USER_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Docker's own rule for container names.
CONTAINER_NAME_PATTERN = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}")
ENGINE_VERSION_PATTERN = re.compile(r"\d{2}(\.\d+)?")
MIN_RDS_STORAGE_GB = 20
MAX_BACKUP_RETENTION_DAYS = 35


@dataclass(frozen=True)
class CredentialSettings:
    """Password generation and rotation (`naap-db:credentials`)."""

    rotation: Rotation = Rotation.SINGLE
    epoch: int = 0
    epochs: Mapping[str, int] = field(default_factory=dict)
    rotation_days: int = 30
    password_length: int = 40
    lambda_archive: str | None = None
    """The rotation Lambda's zip (alternating rotation), relative to the
    project; default $NAAPDB_ROTATION_LAMBDA_ZIP, else
    build/rotation-lambda.zip, which `scripts/build-rotation-lambda.py` builds."""
    alarm_topic_arn: str | None = None
    """An SNS topic for failed rotations; default: the stack creates one."""

    def epoch_of(self, role: str) -> int:
        """The rotation epoch of one login role: bump it to give it a new password."""
        return self.epochs.get(role, 0)

    def keepers(self, role: str, identity: str | None = None) -> dict[str, str]:
        """What replaces a role's generated password when it changes: the
        stack-wide epoch and the role's own (an alternating login also follows
        its identity's epoch)."""
        role_epoch = self.epoch_of(role) + (self.epoch_of(identity) if identity else 0)
        return {"role": role, "epoch": str(self.epoch), "role_epoch": str(role_epoch)}


@dataclass(frozen=True)
class PushSettings:
    """The post-deploy schema push (`naap-db:push`)."""

    mode: str = "sql"
    source: str = "migrations"
    prisma_dir: str | None = None


PUSH_MODES = ("sql", "prisma", "off")


@dataclass(frozen=True)
class StackSettings:
    """Everything a stack declares, validated."""

    stack: str
    production: bool
    catalog: Catalog
    server: ServerSettings
    credentials: CredentialSettings
    push: PushSettings
    has_admin_password: bool = False
    limits: LimitSettings = field(default_factory=LimitSettings)
    pooler: PoolerSettings | None = None
    """`naap-db:pooler` (naapdb.pooler): None, the default, is no pooler."""
    replicas: tuple[Replica, ...] = ()
    """`naap-db:replicas` (naapdb.replicas): RDS read replicas."""

    @cached_property
    def plan(self) -> AccessPlan:
        """The access plan, computed once per stack."""
        return build_plan(
            self.catalog, self.credentials.rotation, self.limits, prisma=self.push.mode == "prisma"
        )

    @cached_property
    def budget(self) -> Budget:
        """Every login's connection limit and the admin's pool against the
        server's max_connections (`naapdb.limits`)."""
        instance_class = self.server.instance_class if isinstance(self.server, RdsServer) else None
        ceiling = ceiling_for(self.server.kind, instance_class, self.limits)
        return Budget(self.plan.login_connections, self.limits.admin_connections, ceiling)

    @cached_property
    def pooler_budget(self) -> PoolerBudget | None:
        """The pooler's side and the server's side of the budget (None: no pooler)."""
        if self.pooler is None:
            return None
        return pooler_budget(self.pooler, self.plan, self.budget)


def parse_settings(stack: str, raw: Mapping[str, Any]) -> StackSettings:
    """Validate a stack's `naap-db:*` config (keys without the namespace;
    encrypted values as `SECRET`) into `StackSettings`."""
    known = {
        "plugins",
        "server",
        ADMIN_PASSWORD_KEY,
        "credentials",
        "push",
        "production",
        "limits",
        "pooler",
        "replicas",
    }
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{NAMESPACE}:{key}", f"unknown key; known keys are {', '.join(sorted(known))}"
            )
    _reject_plaintext_secrets(raw)
    production = _typed(raw.get("production", False), bool, f"{NAMESPACE}:production")
    catalog = parse_catalog(raw.get("plugins"), CATALOG_KEY)
    server = parse_server(raw.get("server"), production)
    has_admin_password = raw.get(ADMIN_PASSWORD_KEY) is not None
    _check_admin_password(server, has_admin_password)
    default_rotation = Rotation.ALTERNATING if isinstance(server, RdsServer) else Rotation.SINGLE
    credentials = parse_credentials(raw.get("credentials"), default_rotation)
    settings = StackSettings(
        stack=stack,
        production=production,
        catalog=catalog,
        server=server,
        credentials=credentials,
        push=parse_push(raw.get("push")),
        has_admin_password=has_admin_password,
        limits=parse_limit_settings(raw.get("limits")),
        pooler=parse_pooler(raw.get("pooler"), server, production),
        replicas=parse_replicas(raw.get("replicas"), server.kind),
    )
    _check_epoch_roles(settings)
    _check_admin_user_is_not_planned(settings)
    settings.budget.check()
    if settings.pooler_budget is not None:
        settings.pooler_budget.check()
    return settings


def _check_admin_password(server: ServerSettings, has_admin_password: bool) -> None:
    """Only an external server takes its admin password from config: the
    container's is generated and RDS keeps its own in Secrets Manager, so a
    configured one would be silently ignored."""
    key = f"{NAMESPACE}:{ADMIN_PASSWORD_KEY}"
    if isinstance(server, ExternalServer) and not has_admin_password:
        raise ConfigError(
            key,
            f"is required for an external server; set it with `pulumi config set --secret {key}`",
        )
    if not isinstance(server, ExternalServer) and has_admin_password:
        source = (
            "is generated by the stack"
            if isinstance(server, ContainerServer)
            else "is managed by RDS in Secrets Manager"
        )
        raise ConfigError(
            key,
            f"is not used: the admin password of {_a(server.kind)} server {source}; "
            f"remove it with `pulumi config rm {key}`",
        )


def _check_admin_user_is_not_planned(settings: StackSettings) -> None:
    """The admin is the server's, not the plan's: sharing a name would let the
    access layer take over (or drop) the role it connects as."""
    user = settings.server.admin_user
    if any(role.name == user for role in settings.plan.roles):
        raise ConfigError(
            f"{NAMESPACE}:server.adminUser",
            f"{user!r} is a role of the access plan; choose another admin user name",
        )


def _reject_plaintext_secrets(raw: Mapping[str, Any], prefix: str = NAMESPACE + ":") -> None:
    server = raw.get("server")
    if prefix == NAMESPACE + ":" and isinstance(server, Mapping):
        for key in server:
            if SECRET_LOOKING_KEY.search(str(key)):
                raise ConfigError(
                    f"{NAMESPACE}:server.{key}",
                    "the admin password does not belong in the server object; remove it and "
                    "(for an external server only) set it with "
                    f"`pulumi config set --secret {NAMESPACE}:{ADMIN_PASSWORD_KEY}`",
                )
    for key, value in raw.items():
        full_key = f"{prefix}{key}"
        if full_key == f"{NAMESPACE}:{ADMIN_PASSWORD_KEY}" and value is not None:
            _refuse_unused_admin_password(raw.get("server"))
        if isinstance(value, Mapping):
            _reject_plaintext_secrets(value, full_key + ".")
        elif SECRET_LOOKING_KEY.search(str(key)) and value is not None and value is not SECRET:
            raise ConfigError(
                full_key,
                "holds a plaintext secret; remove it from the stack file and set it with "
                f"`pulumi config set --secret {full_key}`",
            )


def _refuse_unused_admin_password(server: Any) -> None:
    """An `adminPassword` for a kind that never reads it, plaintext or not:
    telling the user to encrypt it first would send them to a second error."""
    kind = server.get("kind") if isinstance(server, Mapping) else "container"
    if kind in ("container", "rds"):
        _check_admin_password(SERVER_KINDS[kind](), has_admin_password=True)


def parse_server(raw: Any, production: bool) -> ServerSettings:
    """Validate `naap-db:server` into the settings of its kind."""
    key = f"{NAMESPACE}:server"
    if raw is None:
        raw = {"kind": "container"}
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a mapping with a `kind` (container, rds or external)")
    kind = raw.get("kind")
    if kind not in SERVER_KINDS:
        raise ConfigError(
            f"{key}.kind", f"unknown server kind {kind!r}; use one of {', '.join(SERVER_KINDS)}"
        )
    for required in REQUIRED_SERVER_KEYS.get(kind, ()):
        if raw.get(required) in (None, "", []):
            raise ConfigError(f"{key}.{required}", f"is required for {_a(kind)} server")
    server_class = SERVER_KINDS[kind]
    values = _dataclass_values(server_class, {k: v for k, v in raw.items() if k != "kind"}, key)
    server: ServerSettings = server_class(**values)
    _check_server(server, key, production)
    return server


def _a(kind: str) -> str:
    """The kind with its article, for messages: "an rds", "a container"."""
    return f"an {kind}" if kind in ("rds", "external") else f"a {kind}"


def _check_server(server: ServerSettings, key: str, production: bool) -> None:
    _check_admin_user(server, f"{key}.adminUser")
    if isinstance(server, ContainerServer):
        _check_container(server, key, production)
    elif isinstance(server, RdsServer):
        _check_rds(server, key, production)
    else:
        _check_external(server, key)


def _check_admin_user(server: ServerSettings, key: str) -> None:
    user = server.admin_user
    if not ADMIN_USER_PATTERN.fullmatch(user) or user.startswith("pg_") or user == "public":
        raise ConfigError(
            key,
            f"{user!r} is not a usable role name; use lower-case letters, digits and _ "
            "(at most 63), not starting with pg_",
        )
    if isinstance(server, RdsServer) and user.startswith("rds"):
        raise ConfigError(key, f"{user!r}: RDS reserves role names starting with rds")


def _check_container(server: ContainerServer, key: str, production: bool) -> None:
    _check_port(server.port, f"{key}.port")
    _check_image(server.image, f"{key}.image")
    check_bind_address(server.bind_address, f"{key}.bindAddress", production, "the database")
    if server.wait_timeout < 1:
        raise ConfigError(f"{key}.waitTimeout", "must be at least 1 (seconds)")
    if server.container_name is not None and not CONTAINER_NAME_PATTERN.fullmatch(
        server.container_name
    ):
        raise ConfigError(
            f"{key}.containerName",
            f"{server.container_name!r} is not a Docker container name "
            "(letters, digits, _ . -; starting with a letter or digit)",
        )


def _check_image(image: str, key: str) -> None:
    # A missing, `latest` or named-only tag (alpine, bookworm) follows whatever
    # major the registry publishes next; initdb data of one major does not
    # start under another.
    if not has_pinned_tag(image):
        raise ConfigError(
            key,
            f"{image!r} has no pinned tag; name a major version, e.g. postgres:16",
        )


def _check_rds(server: RdsServer, key: str, production: bool) -> None:
    if not server.vpc_id.startswith("vpc-"):
        raise ConfigError(f"{key}.vpcId", f"{server.vpc_id!r} is not a VPC id (vpc-...)")
    for index, subnet in enumerate(server.subnet_ids):
        if not subnet.startswith("subnet-"):
            raise ConfigError(
                f"{key}.subnetIds[{index}]", f"{subnet!r} is not a subnet id (subnet-...)"
            )
    if len(set(server.subnet_ids)) < 2:
        raise ConfigError(
            f"{key}.subnetIds",
            "name at least two subnets in different availability zones (RDS requires it)",
        )
    if not ENGINE_VERSION_PATTERN.fullmatch(server.engine_version):
        raise ConfigError(
            f"{key}.engineVersion",
            f'{server.engine_version!r} is not a PostgreSQL version; use a major such as "16"',
        )
    if not server.instance_class.startswith("db."):
        raise ConfigError(
            f"{key}.instanceClass",
            f"{server.instance_class!r} is not an RDS instance class (db.t4g.medium, ...)",
        )
    if server.allocated_storage < MIN_RDS_STORAGE_GB:
        raise ConfigError(f"{key}.allocatedStorage", f"must be at least {MIN_RDS_STORAGE_GB} (GiB)")
    if server.max_allocated_storage < server.allocated_storage:
        raise ConfigError(
            f"{key}.maxAllocatedStorage",
            f"{server.max_allocated_storage} is below allocatedStorage "
            f"({server.allocated_storage}); it is the storage autoscaling ceiling",
        )
    if not 7 <= server.backup_retention_days <= MAX_BACKUP_RETENTION_DAYS:
        raise ConfigError(
            f"{key}.backupRetentionDays",
            f"{server.backup_retention_days} is outside 7-{MAX_BACKUP_RETENTION_DAYS} days",
        )
    if server.kms_key_id is not None and not server.kms_key_id:
        raise ConfigError(f"{key}.kmsKeyId", "is empty; remove it to use the AWS-managed key")
    if not server.allowed_cidrs and not server.allowed_security_group_ids:
        raise ConfigError(
            f"{key}.allowedCidrs",
            "name at least one CIDR (allowedCidrs) or security group "
            "(allowedSecurityGroupIds) that may reach port 5432",
        )
    for index, cidr in enumerate(server.allowed_cidrs):
        _check_cidr(cidr, f"{key}.allowedCidrs[{index}]", production)
    for index, group in enumerate(server.allowed_security_group_ids):
        if not group.startswith("sg-"):
            raise ConfigError(
                f"{key}.allowedSecurityGroupIds[{index}]",
                f"{group!r} is not a security group id (sg-...)",
            )
    check_rds_operations(server, key)
    if production:
        _check_rds_production(server, key)


def _check_rds_production(server: RdsServer, key: str) -> None:
    """What a production stack may not turn off: the data stays private and
    survives a `pulumi destroy`."""
    if server.publicly_accessible:
        raise ConfigError(f"{key}.publiclyAccessible", "must be false in a production stack")
    if server.skip_final_snapshot:
        raise ConfigError(
            f"{key}.skipFinalSnapshot",
            "must be false in a production stack: deleting the instance takes a final snapshot",
        )
    if not server.deletion_protection:
        raise ConfigError(f"{key}.deletionProtection", "must be true in a production stack")


def _check_external(server: ExternalServer, key: str) -> None:
    _check_port(server.port, f"{key}.port")
    if server.sslmode not in SSL_MODES:
        raise ConfigError(
            f"{key}.sslmode", f"{server.sslmode!r} is not one of {', '.join(SSL_MODES)}"
        )
    if server.database != names.DATABASE:
        raise ConfigError(
            f"{key}.database",
            f"{server.database!r}: the access plan manages database {names.DATABASE}; "
            f"create it on the server (CREATE DATABASE {names.DATABASE}) and use that name",
        )


# What a production database may be reached from: the private ranges a VPC
# uses (RFC 1918 for IPv4; unique local addresses for IPv6), nothing broader.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(block)
    for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _check_cidr(cidr: str, key: str, production: bool) -> None:
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(key, f"{cidr!r} is not a CIDR block, e.g. 10.0.0.0/16") from None
    if production and not any(
        network.version == private.version and network.subnet_of(private)  # type: ignore[arg-type]
        for private in PRIVATE_NETWORKS
    ):
        raise ConfigError(
            key,
            f"{cidr} reaches beyond the private ranges of a VPC in a production stack; name "
            "networks inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (or fc00::/7), or a "
            "security group (allowedSecurityGroupIds)",
        )


def parse_credentials(raw: Any, default_rotation: Rotation) -> CredentialSettings:
    """Validate `naap-db:credentials`."""
    key = f"{NAMESPACE}:credentials"
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(
            key, "must be a mapping (rotation, epoch, epochs, rotationDays, lambdaArchive)"
        )
    rotation_raw = raw.get("rotation", default_rotation.value)
    try:
        rotation = Rotation(rotation_raw)
    except ValueError:
        raise ConfigError(
            f"{key}.rotation",
            f"{rotation_raw!r} is not a rotation; use single or alternating",
        ) from None
    values = _dataclass_values(
        CredentialSettings, {k: v for k, v in raw.items() if k != "rotation"}, key
    )
    epochs = values.get("epochs", {})
    if not isinstance(epochs, Mapping):
        raise ConfigError(f"{key}.epochs", "must map a login role to an integer epoch")
    # `pulumi config set --path` may store an epoch as "1": keep the integer.
    values["epochs"] = {
        role: _typed(epoch, int, f"{key}.epochs.{role}") for role, epoch in epochs.items()
    }
    credentials = CredentialSettings(rotation=rotation, **values)
    if credentials.password_length < 32:
        raise ConfigError(f"{key}.passwordLength", "must be at least 32")
    if not 1 <= credentials.rotation_days <= 365:
        raise ConfigError(f"{key}.rotationDays", "must be between 1 and 365")
    return credentials


def _check_epoch_roles(settings: StackSettings) -> None:
    plan = settings.plan
    # Epochs feed the generated passwords' keepers: those of each identity's
    # first login. `<identity>_b` (alternating) has none; rotation sets it.
    # A schema push login's password derives from the push key and its own
    # epoch, under any rotation (naapdb.pushkey).
    push_logins = {role.name for role in plan.roles if role.purpose == SCHEMA_MIGRATOR}
    known = {role.name for role in plan.first_logins} | set(plan.identities) | push_logins
    idle = {role.name for role in plan.login_roles} - known
    server = settings.server
    if isinstance(server, ContainerServer):
        known.add(server.admin_user)  # the container's generated admin password
    for role in settings.credentials.epochs:
        if role == server.admin_user and role not in known:
            raise ConfigError(
                f"{NAMESPACE}:credentials.epochs.{role}",
                f"the admin password of {_a(server.kind)} server is not generated by this stack; "
                + (
                    "RDS rotates it in Secrets Manager"
                    if isinstance(server, RdsServer)
                    else f"change it on the server and in {NAMESPACE}:{ADMIN_PASSWORD_KEY}"
                ),
            )
        if role in idle:
            raise ConfigError(
                f"{NAMESPACE}:credentials.epochs.{role}",
                "this login gets its password from rotation, never from Pulumi; "
                + _rotate_instead(settings, role),
            )
        if role not in known:
            raise ConfigError(
                f"{NAMESPACE}:credentials.epochs.{role}",
                "is not a login role of this stack's plan",
            )
        if (
            settings.credentials.rotation is Rotation.ALTERNATING
            and role != server.admin_user
            and role not in push_logins
        ):
            raise ConfigError(
                f"{NAMESPACE}:credentials.epochs.{role}",
                "does nothing under alternating rotation (Pulumi ignores these logins' "
                "password changes; the rotation owns them); " + _rotate_instead(settings, role),
            )
    if (
        settings.credentials.rotation is Rotation.ALTERNATING
        and settings.credentials.epoch
        and not isinstance(server, ContainerServer)
    ):
        raise ConfigError(
            f"{NAMESPACE}:credentials.epoch",
            "does nothing under alternating rotation (Pulumi ignores the logins' password "
            "changes; the rotation owns them); rotate each identity's secret instead "
            "(docs/credentials.md: Prod: rotate everything) and remove this key",
        )


def _rotate_instead(settings: StackSettings, role: str) -> str:
    """What to do instead of an epoch under alternating rotation."""
    identity = next(
        (planned.identity for planned in settings.plan.roles if planned.name == role), None
    )
    secret = f"naap-db/{settings.stack}/{identity or role}"
    return (
        f"rotate its identity's secret instead (`aws secretsmanager rotate-secret --secret-id "
        f"{secret}`) and remove this key"
    )


def parse_push(raw: Any) -> PushSettings:
    """Validate `naap-db:push`."""
    key = f"{NAMESPACE}:push"
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a mapping (mode, source, prismaDir)")
    push = PushSettings(**_dataclass_values(PushSettings, raw, key))
    if push.mode not in PUSH_MODES:
        raise ConfigError(f"{key}.mode", f"{push.mode!r} is not one of {', '.join(PUSH_MODES)}")
    if push.mode == "prisma" and not push.prisma_dir:
        raise ConfigError(f"{key}.prismaDir", "is required with mode prisma")
    return push

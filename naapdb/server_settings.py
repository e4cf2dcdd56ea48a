"""The server a stack runs on, validated: a container (dev), an RDS
instance (prod) or a server the user already runs (external).

Split from `naapdb.settings`, which parses the whole stack and calls
`parse_server` for `naap-db:server`; the checks here never need the
catalogue or the credentials.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from naapdb import names
from naapdb.configvalues import check_bind_address, check_sslmode, has_pinned_tag
from naapdb.configvalues import check_port as _check_port
from naapdb.configvalues import dataclass_values as _dataclass_values
from naapdb.errors import ConfigError
from naapdb.rds_options import check_rds_operations


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


def parse_server(raw: Any, production: bool, key: str = "naap-db:server") -> ServerSettings:
    """Validate `naap-db:server` into the settings of its kind."""
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
            raise ConfigError(f"{key}.{required}", f"is required for {with_article(kind)} server")
    server_class = SERVER_KINDS[kind]
    values = _dataclass_values(server_class, {k: v for k, v in raw.items() if k != "kind"}, key)
    server: ServerSettings = server_class(**values)
    _check_server(server, key, production)
    return server


def with_article(kind: str) -> str:
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
    check_sslmode(server.sslmode, f"{key}.sslmode")
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

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
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, TypeVar

from naapdb.catalog import CATALOG_KEY, Catalog, parse_catalog
from naapdb.errors import ConfigError
from naapdb.plan import AccessPlan, Rotation, build_plan

NAMESPACE = "naap-db"
SECRET_LOOKING_KEY = re.compile(r"password|secret|token|passphrase", re.IGNORECASE)
ADMIN_PASSWORD_KEY = "adminPassword"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})

T = TypeVar("T")


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


@dataclass(frozen=True)
class CredentialSettings:
    """Password generation and rotation (`naap-db:credentials`)."""

    rotation: Rotation = Rotation.SINGLE
    epoch: int = 0
    epochs: Mapping[str, int] = field(default_factory=dict)
    rotation_days: int = 30
    password_length: int = 40

    def epoch_of(self, role: str) -> int:
        """The rotation epoch of one login role: bump it to give it a new password."""
        return self.epochs.get(role, 0)


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

    @cached_property
    def plan(self) -> AccessPlan:
        """The access plan, computed once per stack."""
        return build_plan(self.catalog, self.credentials.rotation)


def parse_settings(stack: str, raw: Mapping[str, Any]) -> StackSettings:
    """Validate a stack's `naap-db:*` config (keys without the namespace;
    encrypted values as `SECRET`) into `StackSettings`."""
    known = {"plugins", "server", ADMIN_PASSWORD_KEY, "credentials", "push", "production"}
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
    if isinstance(server, ExternalServer) and not has_admin_password:
        raise ConfigError(
            f"{NAMESPACE}:{ADMIN_PASSWORD_KEY}",
            "is required for an external server; set it with "
            f"`pulumi config set --secret {NAMESPACE}:{ADMIN_PASSWORD_KEY}`",
        )
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
    )
    _check_epoch_roles(settings)
    return settings


def _reject_plaintext_secrets(raw: Mapping[str, Any], prefix: str = NAMESPACE + ":") -> None:
    for key, value in raw.items():
        full_key = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _reject_plaintext_secrets(value, full_key + ".")
        elif SECRET_LOOKING_KEY.search(str(key)) and value is not None and value is not SECRET:
            raise ConfigError(
                full_key,
                "holds a plaintext secret; remove it from the stack file and set it with "
                f"`pulumi config set --secret {full_key}`",
            )
    server = raw.get("server")
    if prefix == NAMESPACE + ":" and isinstance(server, Mapping) and "password" in server:
        raise ConfigError(
            f"{NAMESPACE}:server.password",
            f"the admin password does not belong in the server object; set it with "
            f"`pulumi config set --secret {NAMESPACE}:{ADMIN_PASSWORD_KEY}`",
        )


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
            raise ConfigError(f"{key}.{required}", f"is required for a {kind} server")
    server_class = SERVER_KINDS[kind]
    values = _dataclass_values(server_class, {k: v for k, v in raw.items() if k != "kind"}, key)
    server: ServerSettings = server_class(**values)
    _check_server(server, key, production)
    return server


def _check_server(server: ServerSettings, key: str, production: bool) -> None:
    if isinstance(server, (ContainerServer, ExternalServer)) and not 1 <= server.port <= 65535:
        raise ConfigError(f"{key}.port", f"{server.port} is outside 1-65535")
    if isinstance(server, ContainerServer):
        _check_image(server.image, f"{key}.image")
        if production and not _is_loopback(server.bind_address):
            raise ConfigError(
                f"{key}.bindAddress",
                f"{server.bind_address} publishes the database beyond this machine in a "
                "production stack; use 127.0.0.1",
            )
    if isinstance(server, ExternalServer) and server.sslmode not in SSL_MODES:
        raise ConfigError(f"{key}.sslmode", f"{server.sslmode!r} is not one of {SSL_MODES}")
    if isinstance(server, RdsServer):
        if server.backup_retention_days < 7:
            raise ConfigError(
                f"{key}.backupRetentionDays", f"{server.backup_retention_days} is under 7 days"
            )
        if not server.allowed_cidrs and not server.allowed_security_group_ids:
            raise ConfigError(
                f"{key}.allowedCidrs",
                "name at least one CIDR (allowedCidrs) or security group "
                "(allowedSecurityGroupIds) that may reach port 5432",
            )
        for index, cidr in enumerate(server.allowed_cidrs):
            _check_cidr(cidr, f"{key}.allowedCidrs[{index}]", production)
        if production and server.publicly_accessible:
            raise ConfigError(
                f"{key}.publiclyAccessible", "must be false in a production stack"
            )


def _check_image(image: str, key: str) -> None:
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or not tag or tag == "latest":
        raise ConfigError(
            key,
            f"{image!r} has no pinned tag; name a major version, e.g. postgres:16",
        )


def _check_cidr(cidr: str, key: str, production: bool) -> None:
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(key, f"{cidr!r} is not a CIDR block, e.g. 10.0.0.0/16") from None
    if production and cidr in OPEN_CIDRS:
        raise ConfigError(
            key, f"{cidr} opens the database to the internet in a production stack"
        )


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def parse_credentials(raw: Any, default_rotation: Rotation) -> CredentialSettings:
    """Validate `naap-db:credentials`."""
    key = f"{NAMESPACE}:credentials"
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(key, "must be a mapping (rotation, epoch, epochs, rotationDays)")
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
    for role, epoch in epochs.items():
        _typed(epoch, int, f"{key}.epochs.{role}")
    credentials = CredentialSettings(rotation=rotation, **values)
    if credentials.password_length < 32:
        raise ConfigError(f"{key}.passwordLength", "must be at least 32")
    if not 1 <= credentials.rotation_days <= 365:
        raise ConfigError(f"{key}.rotationDays", "must be between 1 and 365")
    return credentials


def _check_epoch_roles(settings: StackSettings) -> None:
    known = {role.name for role in settings.plan.login_roles} | set(settings.plan.identities)
    for role in settings.credentials.epochs:
        if role not in known:
            raise ConfigError(
                f"{NAMESPACE}:credentials.epochs.{role}",
                "is not a login role of this stack's plan",
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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _dataclass_values(cls: Any, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Map camelCase config keys onto a dataclass's fields, type-checked, and
    refuse any key the dataclass lacks."""
    by_config_name = {_camel(f.name): f for f in fields(cls) if f.name != "rotation"}
    values: dict[str, Any] = {}
    for config_name, value in raw.items():
        spec = by_config_name.get(config_name)
        if spec is None:
            known = ", ".join(sorted(by_config_name))
            raise ConfigError(f"{key}.{config_name}", f"unknown key; known keys are {known}")
        values[spec.name] = _coerce(value, spec.type, f"{key}.{config_name}")
    return values


def _coerce(value: Any, declared: Any, key: str) -> Any:
    declared = str(declared)
    if value is None:
        return None
    if declared.startswith("tuple"):
        if not isinstance(value, list | tuple):
            raise ConfigError(key, "must be a list")
        return tuple(_typed(item, str, f"{key}[{i}]") for i, item in enumerate(value))
    if declared == "bool":
        return _typed(value, bool, key)
    if declared == "int":
        return _typed(value, int, key)
    if declared.startswith("str"):
        return _typed(value, str, key)
    return value


def _typed(value: Any, expected: type[T], key: str) -> T:
    """Accept a value of the expected type; Pulumi config set without
    `--path` stores scalars as strings, so "5432" and "true" are taken too."""
    if expected is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # type: ignore[return-value]
    if expected is int and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)  # type: ignore[return-value]
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(key, f"{value!r} is not a {expected.__name__}")


"""Typed, validated stack settings: the catalogue, the server, credentials
and the schema push, parsed from a stack's raw `naap-db:*` config.

Both entry points feed this one parser: the Pulumi program (through
`components/settings.py`, from `pulumi.Config`) and the command line (from
`Pulumi.yaml` and `Pulumi.<stack>.yaml`, see `stackfiles`). So `pulumi
preview` and `python -m naapdb plan` fail on bad config with the same message,
before any resource is registered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from naapdb.catalog import CATALOG_KEY, Catalog, parse_catalog
from naapdb.configvalues import camel as _camel  # noqa: F401 (tests/test_readme.py reads it here)
from naapdb.configvalues import dataclass_values as _dataclass_values
from naapdb.configvalues import typed as _typed
from naapdb.errors import ConfigError
from naapdb.limits import Budget, LimitSettings, ceiling_for, parse_limit_settings
from naapdb.plan import SCHEMA_MIGRATOR, AccessPlan, Rotation, build_plan
from naapdb.pooler import PoolerBudget, PoolerSettings, parse_pooler, pooler_budget
from naapdb.replicas import Replica, parse_replicas
from naapdb.server_settings import (
    SERVER_KINDS,
    ContainerServer,
    ExternalServer,
    RdsServer,
    ServerSettings,
    parse_server,
    with_article,
)

NAMESPACE = "naap-db"
SECRET_LOOKING_KEY = re.compile(r"password|secret|token|passphrase", re.IGNORECASE)
ADMIN_PASSWORD_KEY = "adminPassword"


class Secret:
    """Marks a config value that is encrypted (`secure:`); the domain never
    needs its plaintext, only the knowledge that it is secret."""

    def __repr__(self) -> str:
        return "Secret()"


SECRET = Secret()


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
    server = parse_server(raw.get("server"), production, f"{NAMESPACE}:server")
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
            f"is not used: the admin password of {with_article(server.kind)} server {source}; "
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
                f"the admin password of {with_article(server.kind)} server is not generated "
                "by this stack; "
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

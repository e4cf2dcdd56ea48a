"""The naap-db guardrails, as plain `pulumi_policy` policy objects.

`__main__.py` serves them as the `naap-db` pack (mandatory) on every preview
and update; the tests call each policy's `validate` (or `remediate`) directly,
because building a `PolicyPack` starts a gRPC server and blocks.

What a policy can see decides what it checks (pulumi_policy 1.21, engine
3.272):
- `args.props` are the resource's inputs as the engine sends them, with every
  secret unwrapped: `validate` cannot tell a secret from a plaintext value.
  Only `remediate` receives values still marked (`pulumi_policy.Secret`), so
  the plaintext-password policy is a remediation that marks them secret.
- `args.opts` carries `protect` but not `retain_on_delete` (the analyzer
  protocol's resource options have no such field), so retention of the
  schemas and the data volume cannot be checked here; the component tests
  assert it on the registered options. What a policy can check is that a
  schema is never dropped with CASCADE, so deleting one that holds objects
  fails instead of taking the data with it.

This module must import nothing from the project: the pack runs in its own
virtualenv (`policy/venv`), with only `policy/requirements.txt` installed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
)

ROLE = "postgresql:index/role:Role"
SCHEMA = "postgresql:index/schema:Schema"
RDS_INSTANCE = "aws:rds/instance:Instance"
CONTAINER = "docker:index/container:Container"

# Role attributes that hand out more than the access model allows, by their
# wire names (pulumi_postgresql's create_role is sent as `createRole`).
ELEVATED_ROLE_ATTRIBUTES = {
    "superuser": "SUPERUSER",
    "createRole": "CREATEROLE",
    "createDatabase": "CREATEDB",
    "bypassRowLevelSecurity": "BYPASSRLS",
    "replication": "REPLICATION",
}

MIN_BACKUP_RETENTION_DAYS = 7

# "16" or "16.4": the major is fixed, so a provider default can never move
# the server to another major.
PINNED_ENGINE_VERSION = re.compile(r"^[1-9][0-9]*(\.[0-9]+)?$")

# Docker publishes a port on every interface when `ip` is not given.
DOCKER_DEFAULT_PORT_IP = "0.0.0.0"

ALLOW_PUBLIC_PORTS = "allowPublicPorts"

# Input keys that hold a password by themselves (`password` on roles, the
# provider and RDS; `passwordWo`, its write-only twin), and environment
# variable names that do (`POSTGRES_PASSWORD=...`, `PGPASSWORD`).
PASSWORD_KEYS = frozenset({"password", "passwordwo"})
PASSWORD_ENV_NAME = re.compile(r"^[A-Z0-9_]*PASSWORD$")
ENV_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)
# A connection string with a password in it: scheme://user:password@host
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)

Validation = Callable[[ResourceValidationArgs, ReportViolation], None]


def _is_true(value: Any) -> bool:
    """A boolean input as the engine may send it: a bool, or its string form
    after a provider's Check."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _number(value: Any) -> float | None:
    """A numeric input (the wire has only floats; Check may leave strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _for_type(resource_type: str, check: Validation) -> Validation:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type == resource_type:
            check(args, report_violation)

    return validate


# --- roles -----------------------------------------------------------------


def _check_role_attributes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    role = args.props.get("name") or args.name
    for key, attribute in ELEVATED_ROLE_ATTRIBUTES.items():
        if _is_true(args.props.get(key)):
            report(
                f"role {role} has {attribute} ({key}=true): only the server's admin may; "
                "grant rights through the plan's group roles instead",
                None,
            )


role_attributes = ResourceValidationPolicy(
    name="postgresql-role-no-elevated-attributes",
    description=(
        "No PostgreSQL role declared by naap-db is SUPERUSER, CREATEROLE, CREATEDB, "
        "BYPASSRLS or REPLICATION."
    ),
    validate=_for_type(ROLE, _check_role_attributes),
    enforcement_level=EnforcementLevel.MANDATORY,
)


# SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, PostgreSQL's format.
SCRAM_VERIFIER = re.compile(
    r"^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$"
)


def _check_role_password(args: ResourceValidationArgs, report: ReportViolation) -> None:
    password = args.props.get("password")
    if password and not SCRAM_VERIFIER.match(str(password)):
        role = args.props.get("name") or args.name
        report(
            f"role {role}'s password is not a SCRAM-SHA-256 verifier: pulumi-postgresql "
            "sends it in plain SQL, which the server's statement log keeps; hand it "
            "naapdb.scram.verifier(password, role) instead",
            None,
        )


role_password = ResourceValidationPolicy(
    name="postgresql-role-password-is-scram-verifier",
    description=(
        "A PostgreSQL role's password is a SCRAM-SHA-256 verifier, never the password: the "
        "provider's CREATE/ALTER ROLE statements land in the server log."
    ),
    validate=_for_type(ROLE, _check_role_password),
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- schemas ---------------------------------------------------------------


def _check_schema_drop(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_true(args.props.get("dropCascade")):
        schema = args.props.get("name") or args.name
        report(
            f"schema {schema} has dropCascade=true: deleting it would drop every table in it; "
            "leave dropCascade unset (DROP SCHEMA then refuses while it holds data)",
            None,
        )


schema_no_cascade = ResourceValidationPolicy(
    name="postgresql-schema-no-drop-cascade",
    description="A schema is never dropped with CASCADE, so its data cannot go with it.",
    validate=_for_type(SCHEMA, _check_schema_drop),
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- RDS -------------------------------------------------------------------


def _check_rds_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _is_true(args.props.get("deletionProtection")):
        report("deletionProtection must be true", None)


def _check_rds_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _is_true(args.props.get("storageEncrypted")):
        report("storageEncrypted must be true", None)


def _check_rds_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_true(args.props.get("publiclyAccessible")):
        report("publiclyAccessible must be false: reach the database from inside the VPC", None)


def _is_replica(args: ResourceValidationArgs) -> bool:
    """A read replica (`replicateSourceDb`): its engine version follows the
    primary's, and RDS takes no final snapshot of it; the primary's backups
    and snapshots hold the data."""
    return bool(args.props.get("replicateSourceDb"))


def _check_rds_backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_replica(args):
        return
    days = _number(args.props.get("backupRetentionPeriod"))
    if days is None or days < MIN_BACKUP_RETENTION_DAYS:
        shown = "unset (RDS default 1)" if days is None else f"{days:g}"
        report(
            f"backupRetentionPeriod is {shown}; it must be at least "
            f"{MIN_BACKUP_RETENTION_DAYS} days",
            None,
        )


def _check_rds_engine_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_replica(args):
        return
    version = args.props.get("engineVersion")
    if not isinstance(version, str) or not PINNED_ENGINE_VERSION.match(version):
        report(
            f"engineVersion is {version!r}; pin the major (e.g. '16'), or the provider's "
            "default decides which PostgreSQL runs",
            None,
        )


def _check_rds_final_snapshot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_true(args.props.get("skipFinalSnapshot")) and not _is_replica(args):
        report(
            "skipFinalSnapshot must be false: deleting the instance keeps a final snapshot", None
        )


def _check_rds_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.opts.protect:
        report("the RDS instance must be declared with protect=True", None)


def _rds_policy(name: str, description: str, check: Validation) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=_for_type(RDS_INSTANCE, check),
        enforcement_level=EnforcementLevel.MANDATORY,
    )


rds_policies = [
    _rds_policy(
        "rds-deletion-protection",
        "The RDS instance has deletion protection.",
        _check_rds_deletion_protection,
    ),
    _rds_policy(
        "rds-storage-encrypted", "The RDS instance's storage is encrypted.", _check_rds_encryption
    ),
    _rds_policy(
        "rds-not-publicly-accessible",
        "The RDS instance is not publicly accessible.",
        _check_rds_not_public,
    ),
    _rds_policy(
        "rds-backup-retention",
        f"The RDS instance keeps backups for at least {MIN_BACKUP_RETENTION_DAYS} days.",
        _check_rds_backups,
    ),
    _rds_policy(
        "rds-engine-version-pinned",
        "The RDS instance's engine version is pinned to a major.",
        _check_rds_engine_version,
    ),
    _rds_policy(
        "rds-final-snapshot",
        "Deleting the RDS instance leaves a final snapshot.",
        _check_rds_final_snapshot,
    ),
    _rds_policy(
        "rds-instance-protected",
        "The RDS instance is protected from deletion by Pulumi.",
        _check_rds_protected,
    ),
]


# --- containers ------------------------------------------------------------


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _check_container_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _is_true(args.get_config().get(ALLOW_PUBLIC_PORTS, False)):
        return
    for port in args.props.get("ports") or []:
        address = port.get("ip") or DOCKER_DEFAULT_PORT_IP
        if not _is_loopback(address):
            report(
                f"port {_port_label(port)} is published on {address}; bind it to 127.0.0.1 "
                f"(or ::1), or set the policy config {ALLOW_PUBLIC_PORTS}: true",
                None,
            )


def _port_label(port: Mapping[str, Any]) -> str:
    internal = _number(port.get("internal"))
    external = _number(port.get("external"))
    inside = f"{internal:g}" if internal is not None else "?"
    return f"{external:g}->{inside}" if external is not None else inside


container_ports = ResourceValidationPolicy(
    name="docker-ports-on-loopback",
    description="A container publishes its ports on loopback only, unless the stack allows it.",
    validate=_for_type(CONTAINER, _check_container_ports),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            ALLOW_PUBLIC_PORTS: {
                "type": "boolean",
                "default": False,
                "description": "Allow a container to publish ports beyond loopback.",
            }
        }
    ),
)


# --- passwords -------------------------------------------------------------


def _unwrapped(value: Any) -> Any:
    """Inputs as plain dicts and lists, keeping `Secret` markers. Remediation
    props arrive wrapped in pulumi_policy's secrets-preserving proxies, whose
    raw contents sit behind the `__target` key (the SDK's own serializer
    reads them the same way)."""
    if isinstance(value, Secret):
        return Secret(_unwrapped(value.value))
    if isinstance(value, dict):
        return {key: _unwrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrapped(item) for item in value]
    if isinstance(value, Mapping):
        return _unwrapped(value["__target"])
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return _unwrapped(value["__target"])  # type: ignore[call-overload]
    return value


def _holds_password(key: str | None, value: str) -> bool:
    if key is not None and (key.lower() in PASSWORD_KEYS or PASSWORD_ENV_NAME.match(key)):
        return bool(value)
    assignment = ENV_ASSIGNMENT.match(value)
    if assignment and PASSWORD_ENV_NAME.match(assignment.group(1)):
        return bool(assignment.group(2))
    return bool(URL_WITH_PASSWORD.search(value))


def plaintext_passwords(props: Any) -> list[str]:
    """Paths (`password`, `envs[2]`, `environment.PGPASSWORD`) of the
    inputs that hold a password and are not marked secret."""
    return [path for path, _ in _walk_plaintext(_unwrapped(props), "", None)]


def _walk_plaintext(value: Any, path: str, key: str | None) -> Iterator[tuple[str, str]]:
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _walk_plaintext(item, f"{path}.{name}" if path else name, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_plaintext(item, f"{path}[{index}]", None)
    elif isinstance(value, str) and _holds_password(key, value):
        yield path, value


def _mark_secret(value: Any, key: str | None = None) -> Any:
    if isinstance(value, Secret):
        return value
    if isinstance(value, dict):
        return {name: _mark_secret(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_mark_secret(item) for item in value]
    if isinstance(value, str) and _holds_password(key, value):
        return Secret(value)
    return value


def _remediate_plaintext_passwords(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    props = _unwrapped(args.props)
    if not any(_walk_plaintext(props, "", None)):
        return None
    remediated: dict[str, Any] = _mark_secret(props)
    return remediated


plaintext_password = ResourceValidationPolicy(
    name="no-plaintext-password",
    description=(
        "No password is sent in plaintext: a password input (a role's or provider's "
        "`password`, a `*PASSWORD=` environment entry, a URL with a password) is marked "
        "secret, so the state stores it encrypted."
    ),
    # A remediation, because only remediations see which inputs are secret.
    # The analyzer takes a plain mapping as well as an awaitable one (its
    # Remediate handles both); the SDK's annotation names only the latter.
    remediate=_remediate_plaintext_passwords,  # type: ignore[arg-type]
    enforcement_level=EnforcementLevel.REMEDIATE,
)


POLICIES: list[ResourceValidationPolicy] = [
    role_attributes,
    role_password,
    schema_no_cascade,
    *rds_policies,
    container_ports,
    plaintext_password,
]

"""How a config value is read into a typed settings dataclass, shared by
every section of the stack settings (`naapdb.settings`, `naapdb.pooler`,
`naapdb.replicas`): camelCase keys onto snake_case fields, scalars that
`pulumi config set` stored as text taken as the number or boolean they
spell, and one `ConfigError` naming the key for anything else."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from naapdb.errors import ConfigError

T = TypeVar("T")


def camel(name: str) -> str:
    """A field's config spelling: `bind_address` -> `bindAddress`."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def dataclass_values(cls: Any, raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Map camelCase config keys onto a dataclass's fields, type-checked, and
    refuse any key the dataclass lacks."""
    by_config_name = {camel(f.name): f for f in fields(cls) if f.name != "rotation"}
    values: dict[str, Any] = {}
    for config_name, value in raw.items():
        spec = by_config_name.get(config_name)
        if spec is None:
            known = ", ".join(sorted(by_config_name))
            raise ConfigError(f"{key}.{config_name}", f"unknown key; known keys are {known}")
        values[spec.name] = coerce(value, spec.type, f"{key}.{config_name}")
    return values


def coerce(value: Any, declared: Any, key: str) -> Any:
    """A config value as the field's declared type (the annotation's text)."""
    declared = str(declared)
    if value is None:
        return None
    if declared.startswith("tuple"):
        if not isinstance(value, list | tuple):
            raise ConfigError(key, "must be a list")
        return tuple(typed(item, str, f"{key}[{i}]") for i, item in enumerate(value))
    if declared == "bool":
        return typed(value, bool, key)
    if declared == "int":
        return typed(value, int, key)
    if declared.startswith("str"):
        # `pulumi config set --path ... 16` stores a number: 16 means "16".
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            raise ConfigError(key, f'{value!r} is a number; quote it in the stack file ("{value}")')
        return typed(value, str, key)
    return value


def typed(value: Any, expected: type[T], key: str) -> T:
    """Accept a value of the expected type; Pulumi config set without
    `--path` stores scalars as strings, so "5432" and "true" are taken too."""
    if expected is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # type: ignore[return-value]
    if expected is int and isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)  # type: ignore[return-value]
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(key, f"{value!r} is not {_WANTED.get(expected, expected.__name__)}")


# What a value of each type must look like, and how to write one.
_WANTED: dict[type, str] = {
    int: "a whole number; write digits only, e.g. 5432",
    bool: "true or false; write true or false, unquoted",
    str: 'text; quote it, e.g. "16"',
}


SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_sslmode(sslmode: str, key: str) -> None:
    """libpq's sslmode values: the server's and the pooler's `sslmode` key."""
    if sslmode not in SSL_MODES:
        raise ConfigError(key, f"{sslmode!r} is not one of {', '.join(SSL_MODES)}")


def check_port(port: int, key: str) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(key, f"{port} is outside 1-65535")


def has_pinned_tag(image: str) -> bool:
    """Whether an image reference names a versioned tag: not missing,
    `latest`, or a name without a digit (`alpine`), which follow whatever
    the registry publishes next."""
    name, _, tag = image.rpartition(":")
    return (
        bool(name)
        and "/" not in tag
        and bool(tag)
        and tag != "latest"
        and (any(c.isdigit() for c in tag))
    )


def check_bind_address(address: str, key: str, production: bool, what: str) -> None:
    """A published port's address: an IP address, and loopback in a
    production stack (where `what`, e.g. "the database", must stay on this
    machine)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise ConfigError(
            key, f"{address!r} is not an IP address; use 127.0.0.1 (this machine only)"
        ) from None
    if production and not parsed.is_loopback:
        raise ConfigError(
            key,
            f"{address} publishes {what} beyond this machine in a production stack; use 127.0.0.1",
        )

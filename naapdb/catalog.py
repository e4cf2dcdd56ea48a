"""The plugin catalogue: which plugin owns which schema and which other schemas
its role may read. It is declared once (`naap-db:plugins` in `Pulumi.yaml`);
everything else (roles, grants, the Prisma check, the push order) is derived
from it, so it is validated here, strictly, before anything is applied."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from naapdb import names
from naapdb.errors import ConfigError
from naapdb.limits import LimitOverride, parse_override

CATALOG_KEY = "naap-db:plugins"
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
ENTRY_KEYS = ("plugin", "schema", "reads", "limits", "securityDefiners", "readFrom")
# Where a plugin's read URL points (naapdb.replicas): the primary, or a replica.
READ_FROM = ("primary", "replica")
RESERVED_SCHEMAS = frozenset({"information_schema", names.META_SCHEMA})


@dataclass(frozen=True)
class PluginEntry:
    """One catalogue entry: a plugin, the schema it owns, the schemas it
    reads, and its own limits over the stack's (`naap-db:limits.plugins`)."""

    plugin: str
    schema: str
    reads: tuple[str, ...] = ()
    limits: LimitOverride | None = None
    security_definers: tuple[str, ...] = ()
    """Functions of its schema that may be SECURITY DEFINER, by name: any
    other is refused by the push and reported by `verify`."""
    read_from: str = "primary"
    """`readFrom`: `replica` gives the plugin's login a read URL on a read
    replica (stacks with `naap-db:replicas`)."""


@dataclass(frozen=True)
class Catalog:
    """The validated catalogue, in declaration order."""

    plugins: tuple[PluginEntry, ...]

    def entry_of(self, schema: str) -> PluginEntry | None:
        """The entry owning `schema`, or None for a schema outside the catalogue."""
        return next((entry for entry in self.plugins if entry.schema == schema), None)

    @property
    def schemas(self) -> tuple[str, ...]:
        """Every plugin schema, in declaration order."""
        return tuple(entry.schema for entry in self.plugins)

    def push_order(self) -> tuple[str, ...]:
        """Schemas in the order the push applies them: `public` first, since
        plugin schemas may reference core tables, then the catalogue's order."""
        schemas = self.schemas
        if names.PUBLIC in schemas:
            return (names.PUBLIC, *(s for s in schemas if s != names.PUBLIC))
        return schemas


def parse_catalog(raw: Any, key: str = CATALOG_KEY) -> Catalog:
    """Validate the raw config value of the catalogue into a `Catalog`.

    Raises `ConfigError` naming the first offending key, e.g.
    `naap-db:plugins[3].schema`.
    """
    if raw is None:
        raise ConfigError(key, "is missing; declare the plugin catalogue in Pulumi.yaml")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(key, f"must be a list of plugin entries, got {type(raw).__name__}")
    if not raw:
        raise ConfigError(key, "is empty; declare at least one plugin with its schema")
    entries = tuple(_parse_entry(item, f"{key}[{index}]") for index, item in enumerate(raw))
    _check_unique(entries, key)
    _check_reads(entries, key)
    _check_derived_roles(entries, key)
    return Catalog(entries)


def _parse_entry(item: Any, key: str) -> PluginEntry:
    if not isinstance(item, Mapping):
        raise ConfigError(
            key,
            "must be a mapping with `plugin`, `schema` and optional `reads`, `limits`, `readFrom`",
        )
    for field in item:
        if field not in ENTRY_KEYS:
            raise ConfigError(
                f"{key}.{field}", f"unknown key; an entry takes only {', '.join(ENTRY_KEYS)}"
            )
    plugin = _identifier(item.get("plugin"), f"{key}.plugin")
    if plugin in names.RESERVED_PLUGIN_IDS:
        raise ConfigError(
            f"{key}.plugin",
            f"'{plugin}' is reserved: its role {names.plugin_login(plugin)} is one of the "
            "platform's own roles; pick another plugin id",
        )
    schema = _identifier(item.get("schema"), f"{key}.schema")
    if schema in RESERVED_SCHEMAS:
        raise ConfigError(f"{key}.schema", f"'{schema}' is reserved; pick another schema name")
    reads_raw = item.get("reads", [])
    if not isinstance(reads_raw, Sequence) or isinstance(reads_raw, str):
        raise ConfigError(f"{key}.reads", "must be a list of schema names, e.g. [public]")
    reads = tuple(
        _identifier(value, f"{key}.reads[{index}]") for index, value in enumerate(reads_raw)
    )
    limits = item.get("limits")
    read_from = item.get("readFrom", "primary")
    if read_from not in READ_FROM:
        raise ConfigError(f"{key}.readFrom", f"{read_from!r} is not one of {', '.join(READ_FROM)}")
    return PluginEntry(
        plugin=plugin,
        schema=schema,
        reads=reads,
        limits=None if limits is None else parse_override(limits, f"{key}.limits"),
        security_definers=_names(item.get("securityDefiners", []), f"{key}.securityDefiners"),
        read_from=read_from,
    )


def _names(raw: Any, key: str) -> tuple[str, ...]:
    """A list of function names (lower-case identifiers), each once."""
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(key, "must be a list of function names, e.g. [refresh_totals]")
    values = tuple(_identifier(value, f"{key}[{index}]") for index, value in enumerate(raw))
    if len(set(values)) != len(values):
        raise ConfigError(key, "lists a function twice")
    return values


def _identifier(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "is required and must be a lower-case identifier")
    if not IDENTIFIER.match(value):
        raise ConfigError(
            key,
            f"'{value}' is not a valid identifier; use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (^[a-z_][a-z0-9_]*$)",
        )
    if value.startswith("pg_"):
        raise ConfigError(key, f"'{value}' starts with pg_, which PostgreSQL reserves")
    if len(value.encode()) > names.MAX_IDENTIFIER_BYTES:
        raise ConfigError(key, f"'{value}' is over {names.MAX_IDENTIFIER_BYTES} bytes")
    return value


def _check_unique(entries: tuple[PluginEntry, ...], key: str) -> None:
    seen_plugins: dict[str, int] = {}
    seen_schemas: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.plugin in seen_plugins:
            raise ConfigError(
                f"{key}[{index}].plugin",
                f"'{entry.plugin}' is already declared at {key}[{seen_plugins[entry.plugin]}]; "
                "plugin ids must be unique",
            )
        if entry.schema in seen_schemas:
            raise ConfigError(
                f"{key}[{index}].schema",
                f"'{entry.schema}' is already owned by {key}[{seen_schemas[entry.schema]}]; "
                "each schema has exactly one owning plugin",
            )
        seen_plugins[entry.plugin] = index
        seen_schemas[entry.schema] = index


def _check_reads(entries: tuple[PluginEntry, ...], key: str) -> None:
    schemas = {entry.schema for entry in entries}
    for index, entry in enumerate(entries):
        for read_index, read in enumerate(entry.reads):
            read_key = f"{key}[{index}].reads[{read_index}]"
            if read == entry.schema:
                raise ConfigError(
                    read_key, f"'{read}' is the plugin's own schema, which it already writes"
                )
            if read not in schemas:
                raise ConfigError(
                    read_key, f"'{read}' is not a schema of the catalogue; declare it first"
                )
        if len(set(entry.reads)) != len(entry.reads):
            raise ConfigError(f"{key}[{index}].reads", "lists a schema twice")


def _check_derived_roles(entries: tuple[PluginEntry, ...], key: str) -> None:
    """Refuse names whose longest derived role would be truncated, or that
    would derive a role another entry (or the platform) already derives."""
    platform_roles = {names.OWNER, names.MIGRATOR, names.APP, names.READONLY}
    platform_roles |= {alt for role in set(platform_roles) for alt in names.alternate_logins(role)}
    # Groups, never logins: no `_a`/`_b` of them exists to collide with.
    platform_roles |= {names.CONNECT_GROUP, names.RECORDER_GROUP}
    owners: dict[str, str] = {role: "the platform" for role in platform_roles}
    for index, entry in enumerate(entries):
        derived = {
            # The longest first, so "shorten by N" is enough for all of them.
            f"{key}[{index}].schema": (
                names.schema_migrator(entry.schema),
                names.schema_owner(entry.schema),
                names.rw_role(entry.schema),
                names.ro_role(entry.schema),
            ),
            f"{key}[{index}].plugin": (
                names.plugin_login(entry.plugin),
                *names.alternate_logins(names.plugin_login(entry.plugin)),
            ),
        }
        for field_key, roles in derived.items():
            for role in roles:
                excess = len(role.encode()) - names.MAX_IDENTIFIER_BYTES
                if excess > 0:
                    raise ConfigError(
                        field_key,
                        f"derived role '{role}' is over {names.MAX_IDENTIFIER_BYTES} bytes; "
                        f"shorten the name by {excess} bytes",
                    )
                if role in owners:
                    raise ConfigError(
                        field_key,
                        f"derived role '{role}' is already derived by {owners[role]}; rename it",
                    )
                owners[role] = field_key

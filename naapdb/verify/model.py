"""What `verify` reports: the kinds of difference, where each is listed,
and the report itself."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds of difference, in the order they are listed within a group.
MISSING_SCHEMA = "missing-schema"
EXTRA_SCHEMA = "extra-schema"
SCHEMA_OWNER = "schema-owner"
MISSING_ROLE = "missing-role"
ROLE_ATTRIBUTE = "role-attribute"
ROLE_LIMIT = "role-limit"
MISSING_MEMBERSHIP = "missing-membership"
MEMBERSHIP_OPTION = "membership-option"
EXTRA_MEMBERSHIP = "extra-membership"
OBJECT_OWNER = "object-owner"
SECURITY_DEFINER = "security-definer"
EVENT_TRIGGER = "event-trigger"
LEDGER_ROW = "ledger-row"
MISSING_GRANT = "missing-grant"
EXTRA_GRANT = "extra-grant"
MISSING_DEFAULT_PRIVILEGE = "missing-default-privilege"
EXTRA_DEFAULT_PRIVILEGE = "extra-default-privilege"
CONNECTION_BUDGET = "connection-budget"
KINDS = (
    MISSING_SCHEMA,
    EXTRA_SCHEMA,
    SCHEMA_OWNER,
    MISSING_ROLE,
    ROLE_ATTRIBUTE,
    ROLE_LIMIT,
    MISSING_MEMBERSHIP,
    MEMBERSHIP_OPTION,
    EXTRA_MEMBERSHIP,
    OBJECT_OWNER,
    SECURITY_DEFINER,
    EVENT_TRIGGER,
    MISSING_GRANT,
    EXTRA_GRANT,
    MISSING_DEFAULT_PRIVILEGE,
    EXTRA_DEFAULT_PRIVILEGE,
    CONNECTION_BUDGET,
    LEDGER_ROW,
)


@dataclass(frozen=True)
class Group:
    """Where a difference is listed: `roles`, `database`, or one schema (a
    schema may well be called "roles", hence a scope besides the name)."""

    scope: str
    schema: str | None = None


ROLES_GROUP = Group("roles")
DATABASE_GROUP = Group("database")


def in_schema(schema: str) -> Group:
    return Group("schema", schema)


# Role attributes no role of the plan may hold: (pg_roles column, keyword).
DENIED_ATTRIBUTES = (
    ("superuser", "SUPERUSER"),
    ("createrole", "CREATEROLE"),
    ("createdb", "CREATEDB"),
    ("replication", "REPLICATION"),
    ("bypassrls", "BYPASSRLS"),
)


# --- differences -----------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One way the live database differs from the plan, and the SQL that fixes it."""

    kind: str
    scope: str  # "roles", "database" or "schema"
    schema: str | None
    message: str
    fix: str
    role: str | None = None
    privileges: tuple[str, ...] = ()
    target: str | None = None
    """What a grant difference is on: database, schema, object or column."""

    @property
    def group(self) -> Group:
        return Group(self.scope, self.schema)


@dataclass(frozen=True)
class Report:
    """The differences, in output order, and the statements sent to read them."""

    database: str
    schemas: int
    differences: tuple[Difference, ...]
    queries: int

    @property
    def drift(self) -> bool:
        return bool(self.differences)


class WrongDatabase(Exception):
    """The connection reached another database than the plan's."""

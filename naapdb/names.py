"""Every name the access model derives, in one place, so the catalogue's
length checks, the plan, the components and verify can never disagree."""

from __future__ import annotations

import re

DATABASE = "naap"
# The platform's own owner: it keeps `naap_meta` (the push's ledger and its
# recorder). Every catalogue schema has an owner of its own (`schema_owner`).
OWNER = "naap_owner"
MIGRATOR = "naap_migrator"
APP = "naap_app"
READONLY = "naap_readonly"
# The NOLOGIN group that holds CONNECT on the database; every login identity
# is a member. One GRANT on the database row instead of one per identity:
# GRANTs on one catalogue row must run one after another ("tuple
# concurrently updated"), and a chain as long as the catalogue overflowed
# the Pulumi SDK's recursive dependency walk at 1,000 plugins.
CONNECT_GROUP = "naap_connect"
# The NOLOGIN group whose members may call the ledger's recorder: every
# schema's push login, and nothing else.
RECORDER_GROUP = "naap_recorder"
META_SCHEMA = "naap_meta"
# The push's ledger, and the SECURITY DEFINER function (owned by naap_owner)
# through which a schema's push login records its own schema's files only.
LEDGER_TABLE = "schema_migrations"
RECORDER_FUNCTION = "record_migration"
PUBLIC = "public"

# PostgreSQL truncates identifiers at NAMEDATALEN - 1 bytes; a truncated role
# name would silently collide with another, so longer names are refused.
MAX_IDENTIFIER_BYTES = 63

# With alternating rotation each login identity is carried by two logins.
ALTERNATE_SUFFIXES = ("_a", "_b")

# Plugin ids whose login role would be one of the platform's own roles.
RESERVED_PLUGIN_IDS = frozenset(
    {"owner", "migrator", "app", "readonly", "meta", "connect", "recorder"}
)


def rw_role(schema: str) -> str:
    """The group role holding read-write rights on a schema."""
    return f"{schema}_rw"


def ro_role(schema: str) -> str:
    """The group role holding read-only rights on a schema."""
    return f"{schema}_ro"


def schema_owner(schema: str) -> str:
    """The NOLOGIN role owning a catalogue schema and every object in it."""
    return f"{schema}_owner"


def schema_migrator(schema: str) -> str:
    """The login a schema's migration files run under: a member of that
    schema's owner and of no other, so a file can become no other owner."""
    return f"{schema}_migrator"


def plugin_login(plugin: str) -> str:
    """The login identity a plugin's service connects as."""
    return f"naap_{plugin}"


def alternate_logins(identity: str) -> tuple[str, ...]:
    """The two logins that carry an identity under alternating rotation."""
    return tuple(identity + suffix for suffix in ALTERNATE_SUFFIXES)


def physical_name(stack: str) -> str:
    """The name of the stack's server objects (container, volume, RDS
    identifier, groups): letters, digits and hyphens, starting with a letter,
    short enough for RDS's 63-character identifiers."""
    slug = re.sub(r"[^a-z0-9]+", "-", stack.lower()).strip("-")[:40].rstrip("-")
    return f"naap-db-{slug or 'stack'}"


def server_container_name(stack: str, configured: str | None) -> str:
    """The dev server container's name: `containerName`, or the stack's."""
    return configured or physical_name(stack)


def pooler_network_name(stack: str) -> str:
    """The Docker network a container pooler shares with the server."""
    return f"{physical_name(stack)}-net"


def pooler_container_name(stack: str, configured: str | None) -> str:
    """The PgBouncer container's name: the pooler's `containerName`, or the stack's."""
    return configured or f"{physical_name(stack)}-pooler"


def stack_labels(stack: str) -> dict[str, str]:
    """Docker labels: which project and stack a container or volume belongs to
    (`recover` adopts only a container or network that carries them)."""
    return {"naap-db.project": "naap-db", "naap-db.stack": stack}

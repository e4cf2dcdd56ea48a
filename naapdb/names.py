"""Every name the access model derives, in one place, so the catalogue's
length checks, the plan, the components and verify can never disagree."""

from __future__ import annotations

DATABASE = "naap"
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
META_SCHEMA = "naap_meta"
PUBLIC = "public"

# PostgreSQL truncates identifiers at NAMEDATALEN - 1 bytes; a truncated role
# name would silently collide with another, so longer names are refused.
MAX_IDENTIFIER_BYTES = 63

# With alternating rotation each login identity is carried by two logins.
ALTERNATE_SUFFIXES = ("_a", "_b")

# Plugin ids whose login role would be one of the platform's own roles.
RESERVED_PLUGIN_IDS = frozenset({"owner", "migrator", "app", "readonly", "meta", "connect"})


def rw_role(schema: str) -> str:
    """The group role holding read-write rights on a schema."""
    return f"{schema}_rw"


def ro_role(schema: str) -> str:
    """The group role holding read-only rights on a schema."""
    return f"{schema}_ro"


def plugin_login(plugin: str) -> str:
    """The login identity a plugin's service connects as."""
    return f"naap_{plugin}"


def alternate_logins(identity: str) -> tuple[str, ...]:
    """The two logins that carry an identity under alternating rotation."""
    return tuple(identity + suffix for suffix in ALTERNATE_SUFFIXES)

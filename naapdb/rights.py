"""Who may do what, per login identity and schema, as a DBA reads it: `own`,
`rw`, `ro` or nothing. Derived from the plan's memberships alone (a login's
rights on a schema's objects are those of the group roles it reaches), so
the matrix and the access diff can never disagree with what `pulumi up`
grants. Identities, not the `_a`/`_b` logins: both logins of an identity are
its members and hold exactly its rights, whatever the rotation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from naapdb import names
from naapdb.plan import AccessPlan


class Level(IntEnum):
    """Rights on one schema, ordered so that a larger level is wider access."""

    NONE = 0
    RO = 1
    RW = 2
    OWN = 3

    @property
    def label(self) -> str:
        """`·` for no rights; the lower-case name otherwise."""
        return "·" if self is Level.NONE else self.name.lower()

    @property
    def word(self) -> str:
        """`none` where a cell would show `·` (diff lines, JSON)."""
        return self.name.lower()


@dataclass(frozen=True)
class Rights:
    """The rights of every identity of a plan on every schema of it."""

    identities: tuple[str, ...]
    schemas: tuple[str, ...]
    own_schema: dict[str, str]
    """login -> the schema of its own plugin (plugin identities and the
    schemas' push logins only)."""
    levels: dict[tuple[str, str], Level]
    """(identity, schema) -> level; absent means `Level.NONE`."""

    def level(self, identity: str, schema: str) -> Level:
        return self.levels.get((identity, schema), Level.NONE)


def rights_of(plan: AccessPlan) -> Rights:
    """Each identity's widest level per schema, through its memberships
    (followed transitively: an identity reaches a schema's owner, a group
    role, or another role that does)."""
    groups_of: dict[str, list[str]] = {}
    for membership in plan.memberships:
        groups_of.setdefault(membership.member, []).append(membership.group)
    grants_of_group: dict[str, tuple[str, Level]] = {}
    for schema in plan.schemas:
        if schema.rw_role:
            grants_of_group[schema.rw_role] = (schema.name, Level.RW)
        if schema.ro_role:
            grants_of_group[schema.ro_role] = (schema.name, Level.RO)
    owned: dict[str, list[str]] = {}
    for schema in plan.schemas:
        owned.setdefault(schema.owner, []).append(schema.name)
    levels: dict[tuple[str, str], Level] = {}
    # The identities, then each schema's push login: it owns its schema.
    logins = (
        *plan.identities,
        *(schema.migrator for schema in plan.schemas if schema.migrator is not None),
    )
    for identity in logins:
        for group in _reached(identity, groups_of):
            if group in owned:
                for schema_name in owned[group]:
                    levels[(identity, schema_name)] = Level.OWN
            elif group in grants_of_group:
                schema_name, level = grants_of_group[group]
                levels[(identity, schema_name)] = max(
                    level, levels.get((identity, schema_name), Level.NONE)
                )
    own_schema = {
        names.plugin_login(schema.plugin): schema.name for schema in plan.schemas if schema.plugin
    }
    own_schema.update({schema.migrator: schema.name for schema in plan.schemas if schema.migrator})
    return Rights(
        identities=logins,
        schemas=tuple(schema.name for schema in plan.schemas),
        own_schema=own_schema,
        levels=levels,
    )


def _reached(role: str, groups_of: dict[str, list[str]]) -> set[str]:
    """Every role `role` is a member of, directly or through other roles."""
    seen: set[str] = set()
    stack = list(groups_of.get(role, ()))
    while stack:
        group = stack.pop()
        if group not in seen:
            seen.add(group)
            stack.extend(groups_of.get(group, ()))
    return seen

"""The access plan: every role, membership, grant, default privilege and
`PUBLIC` revocation the access model of DESIGN.md asks for, computed once
from the catalogue as plain frozen data.

Each catalogue schema is owned by a NOLOGIN role of its own,
`<schema>_owner`, which owns every object in it and reaches no other
schema; its files are pushed by the login `<schema>_migrator`, a member of
that owner and of no other (`naapdb.push`). `naap_owner` keeps only
`naap_meta`, the push's ledger. So a schema is a boundary for the code that
creates its objects too, not only for the logins that use them
(docs/access.md, "The boundary").

Rights on tables, sequences and functions are default privileges only
(`ALTER DEFAULT PRIVILEGES FOR ROLE <schema>_owner IN SCHEMA ...`), never
`GRANT ... ON ALL TABLES IN SCHEMA`: every object of a schema is created by
its owner (the push runs `SET LOCAL ROLE <schema>_owner`), so the defaults
give it its rights at creation. `AccessPlan.object_privileges` says what
the defaults give, so `verify` still checks every existing object's ACL.

CONNECT on the database is granted once, to the NOLOGIN group
`naap_connect`, and every login is a member of it (under alternating
rotation the `_a`/`_b` logins reach it through their identity). One GRANT
on the database's row instead of one per identity: GRANTs on one catalogue
row must run one after another ("tuple concurrently updated"), so
per-identity CONNECT made a dependency chain as long as the catalogue,
which the Pulumi SDK's recursive cycle check could not walk at 1,000
plugins.

The Pulumi components declare resources from this plan, `plan --format sql`
prints it, `verify` compares a live database with it, and the tests hold all
three to it: one source of truth, in deterministic order (the catalogue's).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from naapdb import names
from naapdb.catalog import Catalog
from naapdb.limits import Limits, LimitSettings


class Rotation(StrEnum):
    """How login passwords are rotated (`naap-db:credentials.rotation`)."""

    SINGLE = "single"
    """One login per identity; a new password breaks clients until they re-read it."""
    ALTERNATING = "alternating"
    """Each identity is NOLOGIN, carried by two logins `_a`/`_b`, so one can
    change password while clients still use the other."""


# Rights of the group roles on the objects of their schema. Sequences need
# USAGE and UPDATE for nextval/setval; functions only exist for _rw.
RW_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "table": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "sequence": ("USAGE", "SELECT", "UPDATE"),
    "function": ("EXECUTE",),
}
RO_PRIVILEGES: dict[str, tuple[str, ...]] = {
    # REFERENCES: the owner of a schema whose plugin reads this one is a
    # member of `_ro`, so its migrations may declare foreign keys to these
    # tables (as the reference architecture's plugins do to `public`). It
    # gives nothing else: a foreign key needs CREATE in some schema, which
    # only an owner has.
    "table": ("SELECT", "REFERENCES"),
    "sequence": ("SELECT",),
}


@dataclass(frozen=True)
class Role:
    """A role of the plan. `identity` names the identity a login carries
    (alternating rotation); `schema` the schema a group role serves;
    `limits` what a login may use (`naapdb.limits`): every login has them,
    an alternating identity's two logins each its identity's, and no
    NOLOGIN role (a connection limit or a setting applies only to the role
    a session logs in as)."""

    name: str
    login: bool
    purpose: str
    schema: str | None = None
    identity: str | None = None
    limits: Limits | None = None


@dataclass(frozen=True)
class Membership:
    """`GRANT group TO member`."""

    member: str
    group: str


@dataclass(frozen=True)
class Grant:
    """Privileges of a role on the database (`schema` None) or on a schema.
    Objects in a schema get theirs from `DefaultPrivilege`s (module docstring)."""

    role: str
    object_type: str
    privileges: tuple[str, ...]
    schema: str | None = None


@dataclass(frozen=True)
class DefaultPrivilege:
    """`ALTER DEFAULT PRIVILEGES FOR ROLE owner [IN SCHEMA schema] GRANT ...`;
    empty privileges revoke the built-in default (EXECUTE to PUBLIC)."""

    role: str
    object_type: str
    privileges: tuple[str, ...]
    schema: str | None = None
    owner: str = names.OWNER


# The schemas PostgreSQL itself lets PUBLIC use: `public` (USAGE, since 15;
# CREATE too before). A schema made by CREATE SCHEMA gives PUBLIC nothing,
# so revoking there would change nothing; a right granted to PUBLIC by hand
# on any schema is drift that `verify` reports with the REVOKE that fixes it.
PUBLIC_RIGHTS_SCHEMAS = frozenset({names.PUBLIC})


@dataclass(frozen=True)
class Revocation:
    """Everything revoked from `PUBLIC` on the database (`schema` None) or a
    schema where PostgreSQL gives PUBLIC rights of its own (`public`)."""

    object_type: str
    schema: str | None = None
    role: str = "public"


@dataclass(frozen=True)
class SchemaPlan:
    """A schema and its owner: a catalogue schema's own `<schema>_owner`,
    `naap_owner` for the platform's `naap_meta` (`plugin` None)."""

    name: str
    plugin: str | None
    owner: str = names.OWNER
    rw_role: str | None = None
    ro_role: str | None = None
    migrator: str | None = None
    """The login its files are pushed as (catalogue schemas only)."""
    security_definers: tuple[str, ...] = ()
    """Functions allowed to be SECURITY DEFINER here, by name."""


@dataclass(frozen=True)
class AccessPlan:
    """The whole access model of one stack, as data."""

    database: str
    rotation: Rotation
    schemas: tuple[SchemaPlan, ...]
    roles: tuple[Role, ...]
    memberships: tuple[Membership, ...]
    grants: tuple[Grant, ...]
    default_privileges: tuple[DefaultPrivilege, ...]
    revocations: tuple[Revocation, ...]
    _by_name: dict[str, Role] = field(default_factory=dict, repr=False, compare=False)
    _object_rights: dict[str, dict[tuple[str, str], tuple[str, ...]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._by_name.update({role.name: role for role in self.roles})
        # Indexed once: verify and the text output ask per schema, and a scan
        # of every default privilege per schema would be quadratic.
        self._object_rights.update(_object_rights(self.schemas, self.default_privileges))

    def role(self, name: str) -> Role:
        """The role named `name` (KeyError if the plan has none)."""
        return self._by_name[name]

    @property
    def login_roles(self) -> tuple[Role, ...]:
        """Roles that log in: each gets a generated password."""
        return tuple(role for role in self.roles if role.login)

    @property
    def login_connections(self) -> int:
        """The sum of every login's connection limit: what the plan's
        roles may hold at once (both logins of an alternating identity)."""
        return sum(role.limits.connections for role in self.login_roles if role.limits)

    @property
    def first_logins(self) -> tuple[Role, ...]:
        """The first login of each identity (`logins_of(identity)[0]`): the
        logins `pulumi up` gives a generated password. Under alternating
        rotation that is `<identity>_a`; `<identity>_b` is created LOGIN
        without a password (PostgreSQL refuses password authentication for
        it) until the first rotation's setSecret gives it one."""
        first = {self.logins_of(identity)[0] for identity in self.identities}
        return tuple(role for role in self.login_roles if role.name in first)

    @property
    def identities(self) -> tuple[str, ...]:
        """The login identities of the access model (`naap_migrator`, each
        `naap_<plugin>`, `naap_app`, `naap_readonly`), whatever the rotation."""
        return tuple(role.name for role in self.roles if role.purpose in IDENTITY_PURPOSES)

    def logins_of(self, identity: str) -> tuple[str, ...]:
        """The login role(s) carrying an identity."""
        if self.rotation is Rotation.ALTERNATING:
            return names.alternate_logins(identity)
        return (identity,)

    @property
    def database_grants(self) -> tuple[Grant, ...]:
        """Grants on the database itself: CONNECT for `naap_connect`, once."""
        return tuple(grant for grant in self.grants if grant.object_type == "database")

    def grants_in(self, schema: str) -> Iterator[Grant]:
        """Grants on a schema (its objects get theirs from default privileges)."""
        return (grant for grant in self.grants if grant.schema == schema)

    def object_privileges(self, schema: str) -> dict[tuple[str, str], tuple[str, ...]]:
        """(role, object type) -> the privileges every table, sequence or
        function of `schema` holds: what the default privileges of the
        schema's owner give an object when the owner creates it (in the
        schema, or in any schema). Empty for a schema without rights."""
        return dict(self._object_rights.get(schema, {}))


IDENTITY_PURPOSES = frozenset({"migrator", "plugin", "app", "readonly"})
SCHEMA_OWNER = "schema-owner"
SCHEMA_MIGRATOR = "schema-migrator"


def build_plan(
    catalog: Catalog,
    rotation: Rotation = Rotation.SINGLE,
    limits: LimitSettings | None = None,
    prisma: bool = False,
) -> AccessPlan:
    """Derive the access plan of DESIGN.md from a validated catalogue;
    `limits` None takes the built-in defaults. `prisma`: the push runs
    `prisma db push` once for every schema, as `naap_owner`, which then is a
    member of every schema's owner (docs/push.md says what that costs)."""
    schemas = _schemas(catalog)
    identities = _identities(catalog)
    limits_of = _identity_limits(catalog, limits or LimitSettings())
    # A schema's push login carries the migrator's timeouts; the push uses
    # one connection per schema, one schema at a time.
    push_limits = replace(limits_of[names.MIGRATOR], connections=1)
    reads_of = {entry.schema: entry.reads for entry in catalog.plugins}
    roles = [
        Role(names.OWNER, login=False, purpose="owner"),
        Role(names.CONNECT_GROUP, login=False, purpose="connect"),
        Role(names.RECORDER_GROUP, login=False, purpose="recorder"),
    ]
    memberships: list[Membership] = []
    for plan_schema in schemas:
        if plan_schema.migrator is None:
            continue
        assert plan_schema.rw_role and plan_schema.ro_role
        name = plan_schema.name
        roles.append(Role(plan_schema.rw_role, False, "rw", schema=name))
        roles.append(Role(plan_schema.ro_role, False, "ro", schema=name))
        # Its owner reads what its plugin reads: its migrations may reference
        # those tables (foreign keys), as the plugin's own login may read them.
        roles.append(Role(plan_schema.owner, False, SCHEMA_OWNER, schema=name))
        memberships.extend(
            Membership(plan_schema.owner, names.ro_role(read)) for read in reads_of[name]
        )
    if prisma:
        memberships.extend(
            Membership(names.OWNER, schema.owner) for schema in schemas if schema.migrator
        )
    for identity, purpose, groups in identities:
        alternating = rotation is Rotation.ALTERNATING
        own = None if alternating else limits_of[identity]
        roles.append(Role(identity, login=not alternating, purpose=purpose, limits=own))
        memberships.extend(Membership(identity, group) for group in groups)
        if alternating:
            for login in names.alternate_logins(identity):
                roles.append(
                    Role(
                        login,
                        login=True,
                        purpose="login",
                        identity=identity,
                        limits=limits_of[identity],
                    )
                )
                memberships.append(Membership(login, identity))
    # Each schema's push login, after the identities (they read first in
    # every listing): a member of naap_connect, its owner and naap_recorder.
    for plan_schema in schemas:
        if plan_schema.migrator is None:
            continue
        roles.append(
            Role(
                plan_schema.migrator,
                True,
                SCHEMA_MIGRATOR,
                schema=plan_schema.name,
                limits=push_limits,
            )
        )
        memberships.extend(
            Membership(plan_schema.migrator, group)
            for group in (names.CONNECT_GROUP, plan_schema.owner, names.RECORDER_GROUP)
        )
    return AccessPlan(
        database=names.DATABASE,
        rotation=rotation,
        schemas=schemas,
        roles=tuple(roles),
        memberships=tuple(memberships),
        grants=tuple(_grants(schemas)),
        default_privileges=tuple(_default_privileges(schemas)),
        revocations=(
            Revocation("database"),
            *(Revocation("schema", s.name) for s in schemas if s.name in PUBLIC_RIGHTS_SCHEMAS),
        ),
    )


def _schemas(catalog: Catalog) -> tuple[SchemaPlan, ...]:
    plugin_schemas = tuple(
        SchemaPlan(
            name=entry.schema,
            plugin=entry.plugin,
            owner=names.schema_owner(entry.schema),
            rw_role=names.rw_role(entry.schema),
            ro_role=names.ro_role(entry.schema),
            migrator=names.schema_migrator(entry.schema),
            security_definers=entry.security_definers,
        )
        for entry in catalog.plugins
    )
    # naap_meta's one SECURITY DEFINER function is the ledger's recorder.
    meta = SchemaPlan(
        name=names.META_SCHEMA, plugin=None, security_definers=(names.RECORDER_FUNCTION,)
    )
    return (*plugin_schemas, meta)


def _identities(catalog: Catalog) -> list[tuple[str, str, tuple[str, ...]]]:
    """(identity, purpose, the groups it is a member of), in a stable order.
    Each identity's first group is `naap_connect`: its right to connect."""
    connect = names.CONNECT_GROUP
    identities: list[tuple[str, str, tuple[str, ...]]] = [
        (names.MIGRATOR, "migrator", (connect, names.OWNER))
    ]
    for entry in catalog.plugins:
        groups = (
            connect,
            names.rw_role(entry.schema),
            *(names.ro_role(read) for read in entry.reads),
        )
        identities.append((names.plugin_login(entry.plugin), "plugin", groups))
    identities.append((names.APP, "app", (connect, *(names.rw_role(s) for s in catalog.schemas))))
    identities.append(
        (names.READONLY, "readonly", (connect, *(names.ro_role(s) for s in catalog.schemas)))
    )
    return identities


def _identity_limits(catalog: Catalog, limits: LimitSettings) -> dict[str, Limits]:
    """Identity -> its limits: a plugin's entry over the stack's plugin
    defaults; the platform's identities their own."""
    resolved = {identity: limits.of_platform(identity) for identity in limits.platform}
    for entry in catalog.plugins:
        own = entry.limits.over(limits.plugins) if entry.limits else limits.plugins
        resolved[names.plugin_login(entry.plugin)] = own
    return resolved


def _grants(schemas: tuple[SchemaPlan, ...]) -> Iterator[Grant]:
    # The one grant on the database (module docstring): identities connect
    # through their membership in naap_connect.
    yield Grant(names.CONNECT_GROUP, "database", ("CONNECT",))
    for schema in schemas:
        for role, _ in _group_rights(schema):
            yield Grant(role, "schema", ("USAGE",), schema.name)
        if schema.name == names.META_SCHEMA:
            # The push logins reach the recorder, never the ledger itself;
            # naap_readonly reads the ledger (verify, backups).
            yield Grant(names.RECORDER_GROUP, "schema", ("USAGE",), schema.name)
            yield Grant(names.READONLY, "schema", ("USAGE",), schema.name)


def _default_privileges(schemas: tuple[SchemaPlan, ...]) -> Iterator[DefaultPrivilege]:
    # PostgreSQL gives EXECUTE on every new function to PUBLIC; take that
    # back for every owner's functions so only the plan's roles may call them.
    # (A global default: PostgreSQL has no per-schema revocation.)
    yield DefaultPrivilege("public", "function", ())
    for schema in schemas:
        if schema.owner != names.OWNER:
            yield DefaultPrivilege("public", "function", (), owner=schema.owner)
        for role, privileges in _group_rights(schema):
            for object_type, object_privileges in privileges.items():
                yield DefaultPrivilege(
                    role, object_type, object_privileges, schema.name, owner=schema.owner
                )
        if schema.name == names.META_SCHEMA:
            yield DefaultPrivilege(
                names.RECORDER_GROUP, "function", ("EXECUTE",), schema.name, owner=schema.owner
            )
            yield DefaultPrivilege(
                names.READONLY, "table", ("SELECT",), schema.name, owner=schema.owner
            )


def _object_rights(
    schemas: tuple[SchemaPlan, ...], defaults: tuple[DefaultPrivilege, ...]
) -> dict[str, dict[tuple[str, str], tuple[str, ...]]]:
    """Per schema, what its owner's default privileges give each object."""
    owner_of = {schema.name: schema.owner for schema in schemas}
    rights: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {s.name: {} for s in schemas}
    global_defaults = [d for d in defaults if d.schema is None and d.privileges]
    for schema in schemas:
        for default in global_defaults:
            if default.owner == schema.owner:
                _add_rights(rights[schema.name], default)
    for default in defaults:
        if default.schema is not None and default.owner == owner_of.get(default.schema):
            _add_rights(rights[default.schema], default)
    return rights


def _add_rights(rights: dict[tuple[str, str], tuple[str, ...]], default: DefaultPrivilege) -> None:
    key = (default.role, default.object_type)
    held = rights.get(key, ())
    rights[key] = held + tuple(p for p in default.privileges if p not in held)


def _group_rights(schema: SchemaPlan) -> list[tuple[str, dict[str, tuple[str, ...]]]]:
    if schema.rw_role is None or schema.ro_role is None:
        return []
    return [(schema.rw_role, RW_PRIVILEGES), (schema.ro_role, RO_PRIVILEGES)]

"""The access model in the database: every role, membership, schema, grant,
default privilege and `PUBLIC` revocation of the access plan
(`naapdb.plan`), declared with pulumi-postgresql through the server's admin
provider, one resource per plan item (memberships: one entry of a Role's
`roles`).

`DatabaseAccess` holds what belongs to the whole database: `naap_owner`
(the keeper of `naap_meta`), the groups `naap_connect` and `naap_recorder`,
the login identities and their `_a`/`_b` logins (each Role naming the
groups it is a member of, `naap_connect` first), CONNECT on the database
for `naap_connect` (one grant), the revocation of PUBLIC's rights on it,
and the revocation of PUBLIC's EXECUTE on functions naap_owner creates. One
`SchemaAccess` per schema holds the schema itself, its owner
`<schema>_owner`, its `_rw`/`_ro` group roles, its push login
`<schema>_migrator`, USAGE on the schema, the default privileges (the
owner's revocation of PUBLIC's EXECUTE included), and, on `public` only,
PUBLIC's revocation (PostgreSQL gives PUBLIC nothing on a schema CREATE
SCHEMA makes; `naapdb.plan.PUBLIC_RIGHTS_SCHEMAS`).

What one plugin costs (single rotation / alternating): the SchemaAccess
component, the Schema, 5 / 7 Roles (the owner, `_rw`, `_ro`, the push
login, `naap_<plugin>`, and its `_a`/`_b`), USAGE for `_rw` and `_ro`, 6
DefaultPrivileges: 15 / 17 here, plus one password (and under alternating
rotation the identity's secret, its version and its rotation schedule) in
`components/credentials.py` and `rotation.py`. Its right to connect is an
entry of the identity's `roles` (`naap_connect`), not a resource; its push
login's password derives from the stack's one push key.

Data safety, decided in `_Declarer.options` only: schemas are always
`retain_on_delete` (and `drop_cascade=False`), and in a production stack
schemas and roles are protected. Removing a plugin from the catalogue
removes its SchemaAccess children and its identity, and takes its groups out
of the `roles` of `naap_app`, `naap_readonly` and its readers, nothing
else: the schema, and so its tables, stays. Its owner's REASSIGN OWNED
before DROP OWNED and DROP ROLE hands the schema and its objects to the
admin (adding the plugin back hands them to the new owner, `naapdb.adopt`);
its other roles own nothing. Roles are not retained, since a role left
behind would make adding the plugin back fail on "role already exists".

The decisions the code below relies on (memberships as a Role's `roles`, no
ALL-IN-SCHEMA grants, `_b` without a password, adopting `public`, one chain
per schema, no role attribute left implicit): docs/access.md, "How the
components declare it".
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pulumi
import pulumi_postgresql as postgresql

from naapdb import names, scram
from naapdb.plan import (
    AccessPlan,
    DefaultPrivilege,
    Grant,
    Revocation,
    Role,
    Rotation,
    SchemaPlan,
)
from naapdb.settings import StackSettings
from naapdb.urns import ACCESS_TYPE, SCHEMA_ACCESS_TYPE, child_name, role_name

# Rotation (alternating) changes login passwords after creation: `pulumi up`
# must not put back the password it first generated (`_a`), nor clear the
# one rotation gave the login it created without one (`_b`).
ROTATED_PASSWORD = ["password"]
# The grantee pulumi-postgresql takes for PUBLIC.
PUBLIC_GRANTEE = "public"

T = TypeVar("T")


def role_password(password: pulumi.Output[str] | None, role: str) -> pulumi.Output[str] | None:
    """What a Role's `password` gets: the SCRAM verifier of the generated
    password, never the password. pulumi-postgresql sends it in plain SQL
    (`CREATE ROLE ... PASSWORD '...'`), which a server logging statements
    writes to its log; a verifier is stored as it is and reveals nothing.
    Deterministic per password and role, so previews stay no-op. Computed
    on a worker thread (PBKDF2 releases the GIL), so the verifiers of a large
    catalogue overlap with the program's own work instead of adding to it."""
    if password is None:
        return None
    return pulumi.Output.secret(
        password.apply(
            lambda value: asyncio.get_running_loop().run_in_executor(
                None, scram.verifier, value, role
            )
        )
    )


@dataclass(frozen=True)
class Scope:
    """The plan items of one schema (or, `schema` None, of the whole database)."""

    schema: SchemaPlan | None
    roles: tuple[Role, ...] = ()
    grants: tuple[Grant, ...] = ()
    default_privileges: tuple[DefaultPrivilege, ...] = ()
    revocations: tuple[Revocation, ...] = ()


def scopes(plan: AccessPlan) -> dict[str | None, Scope]:
    """Split the plan by schema: a role by the schema it serves, grants,
    default privileges and revocations by their schema; everything else (key
    None) belongs to the database. Memberships go with their member's Role
    (`groups_of`)."""
    by_name = {schema.name: schema for schema in plan.schemas}
    keys: list[str | None] = [None, *by_name]
    # A schema owner's global default (PUBLIC's EXECUTE revoked on the
    # functions it creates) belongs with its schema; naap_owner's with the
    # database, where it always was.
    schema_of_owner = {s.owner: s.name for s in plan.schemas if s.owner != names.OWNER}
    # Each kind of item is split in one pass (a scan per schema would make
    # the program quadratic in the catalogue).
    roles = _by_schema(plan.roles, lambda role: role.schema)
    grants = _by_schema(plan.grants, lambda grant: grant.schema)
    defaults = _by_schema(
        plan.default_privileges, lambda d: d.schema or schema_of_owner.get(d.owner)
    )
    revocations = _by_schema(plan.revocations, lambda revocation: revocation.schema)
    return {
        key: Scope(
            schema=by_name[key] if key else None,
            roles=tuple(roles.get(key, ())),
            grants=tuple(grants.get(key, ())),
            default_privileges=tuple(defaults.get(key, ())),
            revocations=tuple(revocations.get(key, ())),
        )
        for key in keys
    }


def groups_of(plan: AccessPlan) -> dict[str, tuple[str, ...]]:
    """Member -> the groups it is a member of, in the plan's order: the
    `roles` input of the member's Role."""
    grouped: dict[str, list[str]] = {}
    for membership in plan.memberships:
        grouped.setdefault(membership.member, []).append(membership.group)
    return {member: tuple(groups) for member, groups in grouped.items()}


def _by_schema(
    items: Iterable[T], schema_of: Callable[[T], str | None]
) -> dict[str | None, list[T]]:
    """Items grouped by their schema, each group in the plan's order."""
    grouped: dict[str | None, list[T]] = {}
    for item in items:
        grouped.setdefault(schema_of(item), []).append(item)
    return grouped


@dataclass
class _Declarer:
    """What every resource of the access layer shares: the provider, the
    stack's data-safety options, and the roles declared so far (for
    `depends_on`). Both components declare through it, so protection and
    retention are decided here and nowhere else."""

    provider: postgresql.Provider
    database: str
    production: bool
    alternating: bool
    passwords: Mapping[str, pulumi.Output[str]]
    """Login -> its generated password (`Credentials.passwords`): the first
    login of each identity; an alternating `_b` has none until rotation."""
    groups_of: Mapping[str, Sequence[str]]
    roles: dict[str, postgresql.Role] = field(default_factory=dict)
    resources: list[pulumi.Resource] = field(default_factory=list)
    depended_on: set[int] = field(default_factory=set)
    """ids of the resources another access resource waits for."""

    @property
    def frontier(self) -> list[pulumi.Resource]:
        """The resources nothing else here waits for: waiting for these is
        waiting for all of them (the engine waits transitively), at a
        fraction of the dependencies to hand the SDK."""
        return [r for r in self.resources if id(r) not in self.depended_on]

    def options(
        self,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
        *,
        keep: bool = False,
        retain: bool = False,
        ignore_changes: list[str] | None = None,
    ) -> pulumi.ResourceOptions:
        """`keep`: a role or schema, protected in production; `retain`: never
        deleted from the server by Pulumi (a schema holds data)."""
        self.depended_on.update(id(resource) for resource in depends_on)
        return pulumi.ResourceOptions(
            parent=parent,
            provider=self.provider,
            depends_on=list(depends_on),
            protect=keep and self.production,
            retain_on_delete=retain,
            ignore_changes=ignore_changes,
        )

    def _add(self, resource: pulumi.Resource) -> pulumi.Resource:
        self.resources.append(resource)
        return resource

    def _needs(self, *role_names: str) -> list[pulumi.Resource]:
        """The roles a resource refers to (`public` is no role): each is
        declared before anything that names it, or the plan is inconsistent."""
        return [self.roles[name] for name in role_names if name != PUBLIC_GRANTEE]

    def role(
        self,
        prefix: str,
        parent: pulumi.Resource,
        role: Role,
        after: Sequence[pulumi.Resource] = (),
    ) -> postgresql.Role:
        """The role, a member of its groups (declared before it: the entries
        are their Role resources' `name` outputs, so the member depends on
        them), created after `after`. A login gets its password unless it is
        an alternating rotation's `_b`, which gets one from the first rotation."""
        group_roles = [self.roles[group] for group in self.groups_of.get(role.name, ())]
        self.depended_on.update(id(group) for group in group_roles)
        groups = [group.name for group in group_roles]
        password = role_password(self.passwords.get(role.name), role.name)
        limits = role.limits
        resource = postgresql.Role(
            role_name(prefix, role.name),
            name=role.name,
            login=role.login,
            password=password,
            roles=groups or None,
            inherit=True,
            superuser=False,
            create_database=False,
            create_role=False,
            replication=False,
            bypass_row_level_security=False,
            # A login's limits (naapdb.limits); a NOLOGIN role has none: -1
            # and no settings, so the provider takes back any set by hand.
            connection_limit=limits.connections if limits else -1,
            statement_timeout=limits.statement_timeout_ms if limits else None,
            idle_in_transaction_session_timeout=(
                limits.idle_in_transaction_timeout_ms if limits else None
            ),
            opts=self.options(
                parent,
                after,
                keep=True,
                # An identity's logins only: a schema push login's password
                # is Pulumi's (derived from the push key) under any rotation.
                ignore_changes=ROTATED_PASSWORD if self.alternating and role.identity else None,
            ),
        )
        self.roles[role.name] = resource
        self._add(resource)
        return resource

    def schema(self, prefix: str, parent: pulumi.Resource, schema: SchemaPlan) -> postgresql.Schema:
        resource = postgresql.Schema(
            f"{prefix}-schema",
            name=schema.name,
            database=self.database,
            owner=schema.owner,
            # Adopt a schema that exists (`public`, or one retained when its
            # plugin was removed and now added back) instead of failing.
            if_not_exists=True,
            # Even an explicit delete never takes the tables with it.
            drop_cascade=False,
            opts=self.options(parent, self._needs(schema.owner), keep=True, retain=True),
        )
        self._add(resource)
        return resource

    def grant(
        self, prefix: str, parent: pulumi.Resource, grant: Grant, after: Sequence[pulumi.Resource]
    ) -> postgresql.Grant:
        # The plan grants on the database and on schemas only: objects get
        # their rights from the default privileges (module docstring).
        resource = postgresql.Grant(
            f"{prefix}-grant-{grant.role}-{grant.object_type}",
            database=self.database,
            role=grant.role,
            object_type=grant.object_type,
            schema=grant.schema,
            privileges=list(grant.privileges),
            with_grant_option=False,
            opts=self.options(parent, [*after, *self._needs(grant.role)]),
        )
        self._add(resource)
        return resource

    def revocation(
        self,
        prefix: str,
        parent: pulumi.Resource,
        revocation: Revocation,
        after: Sequence[pulumi.Resource],
    ) -> postgresql.Grant:
        # pulumi-postgresql revokes with a Grant to `public` of no privilege.
        resource = postgresql.Grant(
            f"{prefix}-revoke-{revocation.role}-{revocation.object_type}",
            database=self.database,
            role=revocation.role,
            object_type=revocation.object_type,
            schema=revocation.schema,
            privileges=[],
            opts=self.options(parent, after),
        )
        self._add(resource)
        return resource

    def default_privilege(
        self,
        prefix: str,
        parent: pulumi.Resource,
        default: DefaultPrivilege,
        after: Sequence[pulumi.Resource],
    ) -> postgresql.DefaultPrivileges:
        resource = postgresql.DefaultPrivileges(
            f"{prefix}-default-{default.role}-{default.object_type}",
            database=self.database,
            owner=default.owner,
            role=default.role,
            schema=default.schema,
            object_type=default.object_type,
            privileges=list(default.privileges),
            with_grant_option=False,
            opts=self.options(parent, [*after, *self._needs(default.owner, default.role)]),
        )
        self._add(resource)
        return resource


class SchemaAccess(pulumi.ComponentResource):
    """One schema and everything that exists because of it: its owner, its
    group roles and push login, USAGE on it, its default privileges and
    PUBLIC's revocation. Children are named from this component's name.

    Declared in two steps (`DatabaseAccess` runs the first for every schema,
    then the second): a schema's owner is a member of the `_ro` group of each
    schema its plugin reads, which may come later in the catalogue, or read
    it back."""

    schema: postgresql.Schema
    roles: dict[str, postgresql.Role]

    def __init__(
        self,
        name: str,
        scope: Scope,
        declarer: _Declarer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SCHEMA_ACCESS_TYPE, name, None, opts)
        assert scope.schema is not None
        self._name, self._scope, self._declarer = name, scope, declarer
        self.roles = {}
        self.resources: list[pulumi.Resource] = []
        # The provider drops a role after REASSIGN OWNED BY / DROP OWNED BY,
        # and two of those touching the same schema's rows at once fail with
        # "tuple concurrently updated" (seen on `pulumi destroy` through the
        # real engine; docs/engine.md). So the schema's roles come one after
        # the other (groups, owner, push login): destroy drops them in reverse.
        self._previous: list[pulumi.Resource] = []
        self._declare_roles(lambda role: role.purpose in ("rw", "ro"))

    def _declare_roles(self, chosen: Callable[[Role], bool]) -> None:
        for role in self._scope.roles:
            if chosen(role):
                resource = self._declarer.role(self._name, self, role, self._previous)
                self.roles[role.name] = resource
                self.resources.append(resource)
                self._previous = [resource]

    def complete(self) -> None:
        """The owner (once every group exists), the push login, the schema
        and the privileges on it."""
        declarer, name, scope = self._declarer, self._name, self._scope
        assert scope.schema is not None
        self._declare_roles(lambda role: role.purpose not in ("rw", "ro"))
        first = len(declarer.resources)
        self.schema = declarer.schema(name, self, scope.schema)
        # One chain per schema (see the module docstring), starting after the
        # schema exists and is owned by its owner.
        last: pulumi.Resource = self.schema
        for revocation in scope.revocations:
            last = declarer.revocation(name, self, revocation, [last])
        for grant in scope.grants:
            last = declarer.grant(name, self, grant, [last])
        for default in scope.default_privileges:
            last = declarer.default_privilege(name, self, default, [last])
        self.ready: pulumi.Resource = last
        """The chain's last resource: once it exists, so does everything
        here (the chain starts at the schema, and each grant and default
        privilege waits for the group roles it names)."""
        self.resources += declarer.resources[first:]
        self.register_outputs(
            {
                "schema": self.schema.name,
                "roles": sorted(self.roles),
                "resources": len(self.resources),
            }
        )


class DatabaseAccess(pulumi.ComponentResource):
    """The whole access plan of a stack, declared through `provider`."""

    roles: dict[str, postgresql.Role]
    schemas: dict[str, SchemaAccess]
    resources: list[pulumi.Resource]
    """Every custom resource declared here and in the SchemaAccess children;
    the schema push depends on them."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        provider: postgresql.Provider,
        passwords: Mapping[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(ACCESS_TYPE, name, None, opts)
        plan = settings.plan
        declarer = _Declarer(
            provider=provider,
            database=plan.database,
            production=settings.production,
            alternating=plan.rotation is Rotation.ALTERNATING,
            passwords=passwords,
            groups_of=groups_of(plan),
        )
        by_schema = scopes(plan)
        database = by_schema.pop(None)
        # Roles that are members of nothing first (naap_owner, naap_connect,
        # naap_recorder: the push logins are members of the last two), then
        # each catalogue schema with its roles, then the roles that are
        # members of those (identities and logins; naap_owner too when the
        # push is Prisma's), and last naap_meta, whose owner is naap_owner.
        early = [role for role in database.roles if role.name not in declarer.groups_of]
        late = [role for role in database.roles if role.name in declarer.groups_of]
        for role in early:
            declarer.role(name, self, role, self._after(role, declarer))
        schema_access = {
            schema.name: functools.partial(
                SchemaAccess,
                child_name(name, schema.name),
                by_schema[schema.name],
                declarer,
                pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for schema in plan.schemas
        }
        self.schemas = {
            schema: make() for schema, make in schema_access.items() if schema != names.META_SCHEMA
        }
        for component in self.schemas.values():
            component.complete()
        for role in late:
            declarer.role(name, self, role, self._after(role, declarer))
        meta = schema_access[names.META_SCHEMA]()
        meta.complete()
        self.schemas[names.META_SCHEMA] = meta
        # On the database row: PUBLIC's revocation, then the one CONNECT
        # grant (to naap_connect), one after the other and nothing more, so
        # the chain does not grow with the catalogue (module docstring).
        chain: list[pulumi.Resource] = []
        for revocation in database.revocations:
            chain = [declarer.revocation(name, self, revocation, chain)]
        on_database: dict[str, pulumi.Resource] = {}
        for grant in database.grants:
            chain = [declarer.grant(name, self, grant, chain)]
            on_database[grant.role] = chain[0]
        self.connect_grant: pulumi.Resource = on_database[names.CONNECT_GROUP]
        """CONNECT on the database for `naap_connect`, the only grant on it."""
        for default in database.default_privileges:
            declarer.default_privilege(name, self, default, [])
        self.roles = declarer.roles
        self.resources = declarer.resources
        self.frontier = declarer.frontier
        self._plan = plan
        self._groups_of = declarer.groups_of
        self.register_outputs(
            {
                "schemas": [schema.name for schema in plan.schemas],
                "roles": [role.name for role in plan.roles],
                "owner": names.OWNER,
            }
        )

    @staticmethod
    def _after(role: Role, declarer: _Declarer) -> list[pulumi.Resource]:
        """naap_recorder after naap_owner when it can be: `pulumi destroy`
        drops it first then, so its DROP OWNED (EXECUTE on the recorder) and
        naap_owner's REASSIGN OWNED (the recorder's owner) never touch the
        function's row at once."""
        if role.name == names.RECORDER_GROUP and names.OWNER in declarer.roles:
            return [declarer.roles[names.OWNER]]
        return []

    def ready_for(self, identity: str) -> list[pulumi.Resource]:
        """What a login of `identity` needs before it can log in and reach
        its schemas: its roles, `naap_connect` and its CONNECT grant (the
        identity connects as a member), and the schemas its groups serve,
        each by its `ready` resource. Rotation waits on exactly this; waiting
        on every access resource for every identity, or on each schema's
        every resource, would cost the program quadratic time (the SDK
        copies a resource's dependency set for each one added)."""
        members = {identity, *self._plan.logins_of(identity)}
        needed: list[pulumi.Resource] = [self.roles[name] for name in sorted(members)]
        needed += [self.roles[names.CONNECT_GROUP], self.connect_grant]
        for group in self._groups_of.get(identity, ()):
            schema = self._plan.role(group).schema
            if schema is not None:
                needed.append(self.schemas[schema].ready)
        return needed

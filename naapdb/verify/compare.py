"""The comparison: every way the live state (`live`) differs from the
access plan, each a `Difference` with the SQL that fixes it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from psycopg import sql

from naapdb import names
from naapdb.limits import Budget
from naapdb.plan import AccessPlan
from naapdb.verify.limits import budget_drift, limit_drift
from naapdb.verify.live import (
    BUILTIN_DEFAULTS,
    DEFAULT_ACL_TYPES,
    OBJECT_TYPE_CODES,
    PUBLIC,
    AclEntry,
    CountingConnection,
    Executor,
    LiveLedgerRow,
    LiveMembership,
    LiveObject,
    LiveState,
    read_live_state,
)

PRIVILEGE_ORDER = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
    "MAINTAIN",
    "USAGE",
    "EXECUTE",
    "CREATE",
    "CONNECT",
    "TEMPORARY",
)
# aclexplode spells privileges as upper-case keywords; anything else is
# refused rather than pasted into a fix statement.
PRIVILEGE_WORD = re.compile(r"^[A-Z][A-Z ]*$")

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


def verify(
    connection: Executor,
    plan: AccessPlan,
    budget: Budget | None = None,
    migration_files: Mapping[str, Set[str]] | None = None,
) -> Report:
    """Read the live state (one query) and compare it with the plan (and,
    given the stack's connection budget, the server's max_connections with
    it; given the migration files per schema, the push's ledger with them,
    in a second query where the login may read it)."""
    counting = CountingConnection(connection)
    live = read_live_state(counting, ledger=migration_files is not None)
    if live.database != plan.database:
        raise WrongDatabase(
            f"the connection reached database {live.database!r}; the plan is for "
            f"{plan.database!r}: point DATABASE_URL at it"
        )
    differences = compare(plan, live, budget, migration_files)
    return Report(plan.database, len(plan.schemas), differences, counting.queries)


def compare(
    plan: AccessPlan,
    live: LiveState,
    budget: Budget | None = None,
    migration_files: Mapping[str, Set[str]] | None = None,
) -> tuple[Difference, ...]:
    """Every difference between the plan and the live state, grouped (roles,
    database, then each schema in the plan's order, then extra schemas)."""
    found = _Comparison(plan, live).run()
    if migration_files is not None and live.ledger is not None:
        found += _ledger_rows(plan, live.ledger, migration_files)
    if budget is not None and live.max_connections is not None:
        short = budget_drift(budget, live.max_connections)
        if short is not None:
            message, fix = short
            found.append(
                Difference(
                    CONNECTION_BUDGET,
                    DATABASE_GROUP.scope,
                    None,
                    message,
                    fix.as_string(None) + ";",
                )
            )
    order = {ROLES_GROUP: 0, DATABASE_GROUP: 1}
    order.update({in_schema(schema.name): 2 + i for i, schema in enumerate(plan.schemas)})
    kind_order = {kind: index for index, kind in enumerate(KINDS)}
    ranked = sorted(
        enumerate(found),
        key=lambda item: (
            order.get(item[1].group, len(order)),
            item[1].schema or "",
            kind_order[item[1].kind],
            item[0],
        ),
    )
    return tuple(difference for _, difference in ranked)


@dataclass(frozen=True)
class _Target:
    """An object privileges are held on: how messages name it and how SQL does."""

    label: str
    clause: sql.Composable
    group: Group
    column: str | None = None
    owner_clause: sql.Composable | None = None  # ALTER ... OWNER names the exact kind
    kind: str = "object"  # database, schema, object or column


@dataclass
class _Comparison:
    plan: AccessPlan
    live: LiveState
    found: list[Difference] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plan_roles = {role.name for role in self.plan.roles}
        self.plan_schemas = {schema.name for schema in self.plan.schemas}
        self.admins = {
            name
            for name, role in self.live.roles.items()
            if role.is_admin and name not in self.plan_roles
        }
        self.schema_of_role = {
            role.name: role.schema for role in self.plan.roles if role.schema is not None
        }

    def run(self) -> list[Difference]:
        self._schemas()
        self._roles()
        self._memberships()
        self._database()
        self._event_triggers()
        self._objects()
        self._default_privileges()
        return self.found

    def _event_triggers(self) -> None:
        # Only a superuser can create one, and it then runs on every DDL of
        # every schema: nothing in the plan needs one.
        for trigger in self.live.event_triggers:
            self._add(
                EVENT_TRIGGER,
                DATABASE_GROUP,
                f"event trigger {trigger.name} (on {trigger.event}, owned by {trigger.owner}) "
                "runs its function on every matching command in every schema",
                sql.SQL("DROP EVENT TRIGGER {}").format(sql.Identifier(trigger.name)),
                role=trigger.owner,
            )

    def _add(
        self,
        kind: str,
        group: Group,
        message: str,
        fix: sql.Composable,
        role: str | None = None,
        privileges: Iterable[str] = (),
        target: str | None = None,
    ) -> None:
        rendered = fix.as_string(None) + ";"
        self.found.append(
            Difference(
                kind,
                group.scope,
                group.schema,
                message,
                rendered,
                role,
                tuple(privileges),
                target,
            )
        )

    def _ignored(self, grantee: str, owner: str) -> bool:
        """Rights that are never drift: the owner's own, the admin's."""
        return grantee == owner or grantee in self.admins

    def _who(self, role: str) -> str:
        if role == PUBLIC:
            return "PUBLIC"
        if role in self.plan_roles:
            return role
        return f"{role} (a role outside the plan)"

    # schemas ---------------------------------------------------------------

    def _schemas(self) -> None:
        for schema in self.plan.schemas:
            live = self.live.schemas.get(schema.name)
            name, owner = sql.Identifier(schema.name), sql.Identifier(schema.owner)
            if live is None:
                self._add(
                    MISSING_SCHEMA,
                    in_schema(schema.name),
                    f"schema {schema.name} does not exist",
                    sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(name, owner),
                )
            elif live.owner != schema.owner:
                self._add(
                    SCHEMA_OWNER,
                    in_schema(schema.name),
                    f"schema {schema.name} is owned by {live.owner}, not {schema.owner}",
                    sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(name, owner),
                    role=live.owner,
                )
        for extra in sorted(set(self.live.schemas) - self.plan_schemas):
            # Removing a plugin keeps its schema and data; dropping it is a
            # person's decision (RESTRICT refuses while it holds anything).
            self._add(
                EXTRA_SCHEMA,
                in_schema(extra),
                f"schema {extra} is not in the catalogue (naap-db:plugins); its contents "
                "are not compared",
                sql.SQL("DROP SCHEMA {} RESTRICT").format(sql.Identifier(extra)),
            )

    # roles and memberships -------------------------------------------------

    def _roles(self) -> None:
        with_password = {role.name for role in self.plan.first_logins}
        for role in self.plan.roles:
            name = sql.Identifier(role.name)
            login = "LOGIN" if role.login else "NOLOGIN"
            live = self.live.roles.get(role.name)
            if live is None:
                # Only the logins `pulumi up` generates a password for get one;
                # a group never logs in, a `_b` login waits for its first rotation.
                how = (
                    "`pulumi up` creates it with its generated password"
                    if role.name in with_password
                    else "the first rotation gives it a password"
                    if role.login
                    else "a group: `pulumi up` creates it"
                )
                self._add(
                    MISSING_ROLE,
                    ROLES_GROUP,
                    f"role {role.name} ({login}) does not exist ({how})",
                    sql.SQL("CREATE ROLE {} {}").format(name, sql.SQL(login)),
                    role=role.name,
                )
                continue
            if live.login != role.login:
                self._add(
                    ROLE_ATTRIBUTE,
                    ROLES_GROUP,
                    f"role {role.name} is {'LOGIN' if live.login else 'NOLOGIN'}, "
                    f"the plan says {login}",
                    sql.SQL("ALTER ROLE {} {}").format(name, sql.SQL(login)),
                    role=role.name,
                )
            for attribute, keyword in DENIED_ATTRIBUTES:
                if getattr(live, attribute):
                    self._add(
                        ROLE_ATTRIBUTE,
                        ROLES_GROUP,
                        f"role {role.name} has {keyword}",
                        sql.SQL("ALTER ROLE {} {}").format(name, sql.SQL("NO" + keyword)),
                        role=role.name,
                    )
            for message, fix in limit_drift(role, live, self.plan.database):
                self._add(ROLE_LIMIT, ROLES_GROUP, message, fix, role=role.name)

    def _membership_group(self, group: str, member: str) -> Group:
        """A membership is listed under the schema whose rights it carries."""
        schema = self.schema_of_role.get(group) or self.schema_of_role.get(member)
        return in_schema(schema) if schema is not None else ROLES_GROUP

    def _memberships(self) -> None:
        planned = {(m.member, m.group) for m in self.plan.memberships}
        live: dict[tuple[str, str], LiveMembership] = {}
        rows: dict[tuple[str, str], list[LiveMembership]] = {}
        for membership in self.live.memberships:
            # PostgreSQL 16 keeps one row per grantor: a pair holds the union.
            key = (membership.member, membership.group)
            seen = live.get(key)
            live[key] = membership if seen is None else _union(seen, membership)
            rows.setdefault(key, []).append(membership)
        for membership_plan in self.plan.memberships:
            member, group = membership_plan.member, membership_plan.group
            if (member, group) in live:
                continue
            self._add(
                MISSING_MEMBERSHIP,
                self._membership_group(group, member),
                f"{member} is not a member of {group}",
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(member)),
                role=member,
            )
        for (member, group), membership in live.items():
            where = self._membership_group(group, member)
            if (member, group) in planned:
                self._planned_membership_options(membership, rows[member, group], where)
                continue
            if member in self.admins or not membership.confers_rights:
                continue
            if member in self.plan_roles or group in self.plan_roles:
                self._add(
                    EXTRA_MEMBERSHIP,
                    where,
                    f"{self._who(member)} is a member of {group} (not in the plan)",
                    _revoke_each(sql.SQL("REVOKE {} FROM {}"), rows[member, group]),
                    role=member,
                )

    def _planned_membership_options(
        self, membership: LiveMembership, rows: Sequence[LiveMembership], where: Group
    ) -> None:
        member, group = sql.Identifier(membership.member), sql.Identifier(membership.group)
        if membership.admin:
            self._add(
                MEMBERSHIP_OPTION,
                where,
                f"{membership.member} is a member of {membership.group} WITH ADMIN OPTION "
                "(may grant it to others)",
                _revoke_each(
                    sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}"), [r for r in rows if r.admin]
                ),
                role=membership.member,
            )
        lacking = [
            option
            for option, value in (("INHERIT", membership.inherit), ("SET", membership.set))
            if value is False
        ]
        if lacking:
            self._add(
                MEMBERSHIP_OPTION,
                where,
                f"{membership.member} is a member of {membership.group} without "
                f"{' and '.join(lacking)}",
                sql.SQL("GRANT {} TO {} WITH {}").format(
                    group,
                    member,
                    sql.SQL(", ").join(sql.SQL(option + " TRUE") for option in lacking),
                ),
                role=membership.member,
            )

    # privileges -------------------------------------------------------------

    def _database(self) -> None:
        # CONNECT belongs to naap_connect alone: a login connects as its
        # member, so CONNECT granted to any other role (a plan role or not)
        # is drift, and so is a missing membership in naap_connect.
        expected: dict[str, set[str]] = {}
        for grant in self.plan.database_grants:
            expected.setdefault(grant.role, set()).update(grant.privileges)
        target = _Target(
            f"database {self.plan.database}",
            sql.SQL("DATABASE {}").format(sql.Identifier(self.plan.database)),
            DATABASE_GROUP,
            kind="database",
        )
        # The database's owner is filtered out by the query already.
        self._compare_acl(self.live.database_acl, expected, "", target)

    def _objects(self) -> None:
        expected_schema: dict[str, dict[str, set[str]]] = {}
        for grant in self.plan.grants:
            if grant.schema is not None and grant.object_type == "schema":
                by_role = expected_schema.setdefault(grant.schema, {})
                by_role.setdefault(grant.role, set()).update(grant.privileges)
        # An existing object holds what the default privileges of its schema
        # gave it when naap_owner created it: the plan grants nothing on
        # objects directly (naapdb.plan), so a revoked right, or an object
        # created by another role (no defaults applied), is missing here.
        expected_objects: dict[tuple[str, str], dict[str, set[str]]] = {}
        for schema in self.plan.schemas:
            for (role, object_type), privileges in self.plan.object_privileges(schema.name).items():
                by_role = expected_objects.setdefault((schema.name, object_type), {})
                by_role.setdefault(role, set()).update(privileges)
        for schema in self.plan.schemas:
            live = self.live.schemas.get(schema.name)
            acl = live.acl if live is not None else ()
            owner = live.owner if live is not None else schema.owner
            target = _Target(
                f"schema {schema.name}",
                sql.SQL("SCHEMA {}").format(sql.Identifier(schema.name)),
                in_schema(schema.name),
                kind="schema",
            )
            self._compare_acl(acl, expected_schema.get(schema.name, {}), owner, target)
        owner_of = {schema.name: schema.owner for schema in self.plan.schemas}
        definers = {schema.name: set(schema.security_definers) for schema in self.plan.schemas}
        for item in self.live.objects:
            if item.schema not in self.plan_schemas:
                continue
            target = _object_target(item)
            owner = owner_of[item.schema]
            if item.owner != owner and not item.linked_to_table:
                self._add(
                    OBJECT_OWNER,
                    in_schema(item.schema),
                    f"{target.label} is owned by {item.owner}, not {owner}",
                    sql.SQL("ALTER {} OWNER TO {}").format(
                        target.owner_clause, sql.Identifier(owner)
                    ),
                    role=item.owner,
                )
            if item.security_definer and item.name not in definers[item.schema]:
                self._add(
                    SECURITY_DEFINER,
                    in_schema(item.schema),
                    f"{target.label} is SECURITY DEFINER: whoever may call it acts with the "
                    f"rights of {item.owner}; allow it by name in its catalogue entry's "
                    "securityDefiners, or make it SECURITY INVOKER",
                    sql.SQL("ALTER {} SECURITY INVOKER").format(target.owner_clause),
                    role=item.owner,
                )
            if item.object_type == "type":
                continue  # the plan gives no rights on types; their owner is checked
            expected = expected_objects.get((item.schema, item.object_type), {})
            self._compare_acl(item.acl, expected, item.owner, target)
        owners = {(o.schema, o.name): o.owner for o in self.live.objects if o.keyword != "FUNCTION"}
        for column in self.live.columns:
            if column.schema not in self.plan_schemas:
                continue
            table = sql.SQL("TABLE {}.{}").format(
                sql.Identifier(column.schema), sql.Identifier(column.table)
            )
            target = _Target(
                f"column {column.schema}.{column.table}.{column.column}",
                table,
                in_schema(column.schema),
                column=column.column,
                kind="column",
            )
            owner = owners.get((column.schema, column.table), owner_of[column.schema])
            self._compare_acl(column.acl, {}, owner, target)

    def _compare_acl(
        self,
        acl: Iterable[AclEntry],
        expected: Mapping[str, set[str]],
        owner: str,
        target: _Target,
    ) -> None:
        held: dict[str, set[str]] = {}
        with_option: dict[str, set[str]] = {}
        for entry in acl:
            held.setdefault(entry.grantee, set()).add(entry.privilege)
            if entry.grantable:
                with_option.setdefault(entry.grantee, set()).add(entry.privilege)
        for role, privileges in expected.items():
            missing = _ordered(privileges - held.get(role, set()))
            if missing:
                self._add(
                    MISSING_GRANT,
                    target.group,
                    f"{role} lacks {', '.join(missing)} on {target.label}",
                    sql.SQL("GRANT {} ON {} TO {}").format(
                        _privileges(missing, target.column), target.clause, _grantee(role)
                    ),
                    role=role,
                    privileges=missing,
                    target=target.kind,
                )
        for grantee, privileges in held.items():
            if self._ignored(grantee, owner):
                continue
            allowed = expected.get(grantee, set())
            extra = _ordered(privileges - allowed)
            if extra:
                self._add(
                    EXTRA_GRANT,
                    target.group,
                    f"{self._who(grantee)} has {', '.join(extra)} on {target.label} "
                    "(not in the plan)",
                    sql.SQL("REVOKE {} ON {} FROM {}").format(
                        _privileges(extra, target.column), target.clause, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=extra,
                    target=target.kind,
                )
            options = _ordered(with_option.get(grantee, set()) & allowed)
            if options:
                self._add(
                    EXTRA_GRANT,
                    target.group,
                    f"{self._who(grantee)} has {', '.join(options)} on {target.label} "
                    "WITH GRANT OPTION (may pass it on)",
                    sql.SQL("REVOKE GRANT OPTION FOR {} ON {} FROM {}").format(
                        _privileges(options, target.column), target.clause, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=options,
                    target=target.kind,
                )

    # default privileges -----------------------------------------------------

    def _default_privileges(self) -> None:
        # (owner, schema or None, object code) -> grantee -> privileges
        expected: dict[tuple[str, str | None, str], dict[str, set[str]]] = {}
        revoked: dict[tuple[str, str | None, str], set[str]] = {}
        for default in self.plan.default_privileges:
            key = (default.owner, default.schema, OBJECT_TYPE_CODES[default.object_type])
            if default.privileges:
                expected.setdefault(key, {}).setdefault(default.role, set()).update(
                    default.privileges
                )
            else:
                revoked.setdefault(key, set()).add(default.role)
        live = {(row.owner, row.schema, row.object_code): row for row in self.live.default_acls}
        keys = list(expected) + [key for key in revoked if key not in expected]
        keys += [key for key in live if key not in expected and key not in revoked]
        for key in keys:
            owner, schema, code = key
            if schema is not None and schema not in self.plan_schemas:
                continue  # inside a schema the plan lacks: that schema is reported
            row = live.get(key)
            held: dict[str, set[str]] = {}
            if row is not None:
                for entry in row.acl:
                    held.setdefault(entry.grantee, set()).add(entry.privilege)
            elif schema is None:
                # No global row: PostgreSQL's built-in defaults apply.
                held = {g: set(p) for g, p in BUILTIN_DEFAULTS.get(code, {}).items()}
            allowed = {g: set(p) for g, p in expected.get(key, {}).items()}
            if schema is None:
                for grantee, privileges in BUILTIN_DEFAULTS.get(code, {}).items():
                    if grantee not in revoked.get(key, set()):
                        allowed.setdefault(grantee, set()).update(privileges)
            self._compare_defaults(owner, schema, code, held, expected.get(key, {}), allowed)

    def _compare_defaults(
        self,
        owner: str,
        schema: str | None,
        code: str,
        held: Mapping[str, set[str]],
        expected: Mapping[str, set[str]],
        allowed: Mapping[str, set[str]],
    ) -> None:
        object_type, plural = DEFAULT_ACL_TYPES.get(code, (code, code))
        where = f"in {schema}" if schema is not None else "in any schema"
        label = f"{object_type}s {owner} creates {where}"
        scope = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}").format(sql.Identifier(owner))
        if schema is not None:
            scope = sql.SQL("{} IN SCHEMA {}").format(scope, sql.Identifier(schema))
        group = in_schema(schema) if schema is not None else DATABASE_GROUP
        kind = sql.SQL(plural)
        for role, privileges in expected.items():
            missing = _ordered(privileges - held.get(role, set()))
            if missing:
                self._add(
                    MISSING_DEFAULT_PRIVILEGE,
                    group,
                    f"{role} does not get {', '.join(missing)} on {label}",
                    sql.SQL("{} GRANT {} ON {} TO {}").format(
                        scope, _privileges(missing), kind, _grantee(role)
                    ),
                    role=role,
                    privileges=missing,
                )
        for grantee, privileges in held.items():
            if self._ignored(grantee, owner):
                continue
            extra = _ordered(privileges - allowed.get(grantee, set()))
            if extra:
                self._add(
                    EXTRA_DEFAULT_PRIVILEGE,
                    group,
                    f"{self._who(grantee)} gets {', '.join(extra)} on {label} (not in the plan)",
                    sql.SQL("{} REVOKE {} ON {} FROM {}").format(
                        scope, _privileges(extra), kind, _grantee(grantee)
                    ),
                    role=grantee,
                    privileges=extra,
                )


def _ledger_rows(
    plan: AccessPlan, ledger: Iterable[LiveLedgerRow], files: Mapping[str, Set[str]]
) -> list[Difference]:
    """Ledger rows of a catalogue schema that name no migration file: a row
    forged, or a file removed after it was applied; the next push stops on
    either. Rows of schemas outside the catalogue are kept history."""
    catalogue = {schema.name for schema in plan.schemas if schema.migrator}
    found = []
    for row in ledger:
        if row.schema not in catalogue or row.name in files.get(row.schema, set()):
            continue
        found.append(
            Difference(
                LEDGER_ROW,
                "schema",
                row.schema,
                f"the ledger records {row.schema} version {row.version:04d} ({row.name}), but "
                f"no such file exists; a push stops on it (restore the file if it was applied "
                "for real; delete the row if it was never a file)",
                sql.SQL("DELETE FROM {}.{} WHERE schema = {} AND version = {}")
                .format(
                    sql.Identifier(names.META_SCHEMA),
                    sql.Identifier(names.LEDGER_TABLE),
                    sql.Literal(row.schema),
                    sql.Literal(row.version),
                )
                .as_string(None)
                + ";",
            )
        )
    return found


def _revoke_each(statement: sql.SQL, rows: Sequence[LiveMembership]) -> sql.Composable:
    """`statement` (REVOKE {group} FROM {member}) once per grantor of the
    rows: plain for the bootstrap superuser's, GRANTED BY for any other's,
    so the fix takes back a membership a non-superuser admin granted too."""
    statements = []
    for row in rows:
        revoke = statement.format(sql.Identifier(row.group), sql.Identifier(row.member))
        if row.grantor is not None:
            revoke = sql.SQL("{} GRANTED BY {}").format(revoke, sql.Identifier(row.grantor))
        statements.append(revoke)
    return sql.SQL("; ").join(statements)


def _union(first: LiveMembership, second: LiveMembership) -> LiveMembership:
    def either(a: bool | None, b: bool | None) -> bool | None:
        return None if a is None and b is None else bool(a or b)

    return LiveMembership(
        first.member,
        first.group,
        first.admin or second.admin,
        either(first.inherit, second.inherit),
        either(first.set, second.set),
    )


def _object_target(item: LiveObject) -> _Target:
    qualified = sql.SQL("{}.{}").format(sql.Identifier(item.schema), sql.Identifier(item.name))
    label = f"{item.keyword.lower()} {item.schema}.{item.name}"
    if item.arguments is not None:
        # The identity arguments come from pg_get_function_identity_arguments:
        # PostgreSQL's own rendering of the signature, quoted where needed.
        qualified = sql.SQL("{}({})").format(qualified, sql.SQL(item.arguments))
        label = f"{label}({item.arguments})"
    return _Target(
        label,
        sql.SQL("{} {}").format(sql.SQL(item.grant_keyword), qualified),
        in_schema(item.schema),
        owner_clause=sql.SQL("{} {}").format(sql.SQL(item.keyword), qualified),
    )


def _ordered(privileges: Iterable[str]) -> tuple[str, ...]:
    rank = {privilege: index for index, privilege in enumerate(PRIVILEGE_ORDER)}
    return tuple(sorted(set(privileges), key=lambda p: (rank.get(p, len(rank)), p)))


def _privileges(privileges: Sequence[str], column: str | None = None) -> sql.Composable:
    for privilege in privileges:
        if not PRIVILEGE_WORD.match(privilege):
            raise ValueError(f"unexpected privilege {privilege!r} in the catalog")
    if column is None:
        return sql.SQL(", ").join(sql.SQL(p) for p in privileges)
    return sql.SQL(", ").join(
        sql.SQL("{} ({})").format(sql.SQL(p), sql.Identifier(column)) for p in privileges
    )


def _grantee(role: str) -> sql.Composable:
    """PUBLIC is a keyword; quoted, it would name a role "public"."""
    return sql.SQL("PUBLIC") if role == PUBLIC else sql.Identifier(role)

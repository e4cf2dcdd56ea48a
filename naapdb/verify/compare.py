"""The comparison: every way the live state (`live`) differs from the
access plan, each a `Difference` with the SQL that fixes it: schemas,
roles and memberships here, privileges in `privileges`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

from psycopg import sql

from naapdb.limits import Budget
from naapdb.plan import AccessPlan
from naapdb.verify.limits import budget_drift, limit_drift
from naapdb.verify.live import (
    CountingConnection,
    Executor,
    LiveMembership,
    LiveState,
    read_live_state,
)
from naapdb.verify.model import (
    CONNECTION_BUDGET,
    DATABASE_GROUP,
    DENIED_ATTRIBUTES,
    EXTRA_MEMBERSHIP,
    EXTRA_SCHEMA,
    KINDS,
    MEMBERSHIP_OPTION,
    MISSING_MEMBERSHIP,
    MISSING_ROLE,
    MISSING_SCHEMA,
    ROLE_ATTRIBUTE,
    ROLE_LIMIT,
    ROLES_GROUP,
    SCHEMA_OWNER,
    Difference,
    Group,
    Report,
    WrongDatabase,
    in_schema,
)
from naapdb.verify.privileges import PrivilegeChecks, _ledger_rows


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


@dataclass
class _Comparison(PrivilegeChecks):
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

"""The access plan as text (a table per schema, for people) and as JSON
(stable keys and order, for machines; the format is documented in
docs/reference.md)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from naapdb.limits import Budget, format_duration
from naapdb.plan import AccessPlan, Grant, Role

# Fields are only ever added (roles[].limits, connection_budget); a change
# that breaks a reader bumps this.
JSON_FORMAT_VERSION = 1


def plan_to_dict(plan: AccessPlan, budget: Budget | None = None) -> dict[str, Any]:
    """The plan as plain JSON-ready data, in the plan's (catalogue) order;
    with the stack's connection budget when given."""
    data = {
        "format_version": JSON_FORMAT_VERSION,
        "database": plan.database,
        "rotation": plan.rotation.value,
        "schemas": [asdict(schema) for schema in plan.schemas],
        "roles": [asdict(role) for role in plan.roles],
        "memberships": [asdict(membership) for membership in plan.memberships],
        "grants": [_listed(asdict(grant)) for grant in plan.grants],
        "default_privileges": [_listed(asdict(default)) for default in plan.default_privileges],
        "revocations": [asdict(revocation) for revocation in plan.revocations],
    }
    if budget is not None:
        data["connection_budget"] = {
            "logins": budget.logins,
            "admin": budget.admin,
            "total": budget.total,
            "max_connections": budget.ceiling.max_connections,
            "reserved": budget.ceiling.reserved,
            "available": budget.ceiling.available,
            "source": budget.ceiling.source,
        }
    return data


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    item["privileges"] = list(item["privileges"])
    return item


def plan_to_json(plan: AccessPlan, budget: Budget | None = None) -> str:
    return json.dumps(plan_to_dict(plan, budget), indent=2) + "\n"


def plan_to_text(plan: AccessPlan, budget: Budget | None = None) -> str:
    """One table per schema (who may do what: USAGE on the schema, and the
    rights its owner's default privileges give every table, sequence and
    function in it), then the roles."""
    lines = [f"database {plan.database}  (rotation: {plan.rotation.value})", ""]
    # Indexed once, so the text stays linear in the catalogue (a scan of every
    # grant per schema and of every membership per role is quadratic).
    members_of: dict[str, list[str]] = {}
    member_of: dict[str, list[str]] = {}
    for membership in plan.memberships:
        members_of.setdefault(membership.group, []).append(membership.member)
        member_of.setdefault(membership.member, []).append(membership.group)
    grants_by_schema: dict[str | None, list[Grant]] = {}
    for grant in plan.grants:
        grants_by_schema.setdefault(grant.schema, []).append(grant)
    for schema in plan.schemas:
        owner_note = f"plugin {schema.plugin}" if schema.plugin else "platform"
        lines.append(f"schema {schema.name}  ({owner_note}, owner {schema.owner})")
        rows = _rights_rows(grants_by_schema.get(schema.name, []), plan, schema.name)
        if not rows:
            lines.append("  no rights for any plugin role")
        width = max((len(grantee) for grantee, _, _ in rows), default=0)
        for grantee, object_type, privileges in rows:
            lines.append(f"  {grantee:<{width}}  {object_type:<9} {', '.join(privileges)}")
        for group in (schema.owner, schema.rw_role, schema.ro_role):
            if group:
                lines.append(f"  {group} members: {', '.join(members_of.get(group, [])) or '-'}")
        lines.append("")
    lines.append("roles")
    width = max(len(role.name) for role in plan.roles)
    for role in plan.roles:
        login = "LOGIN  " if role.login else "NOLOGIN"
        lines.append(
            f"  {role.name:<{width}}  {login}  {role.purpose:<15} member of: "
            f"{', '.join(member_of.get(role.name, [])) or '-'}"
        )
    # CONNECT is granted once, to a group; who may connect is its members.
    connect = [
        f"{grant.role} ({len(members_of.get(grant.role, []))} members)"
        for grant in plan.database_grants
    ]
    lines += ["", f"database {plan.database}: CONNECT to {', '.join(connect)}; PUBLIC revoked"]
    lines.append(
        "tables, sequences and functions: rights from the default privileges of their "
        "schema's owner, which creates them all (its files run as its own push login)"
    )
    lines += ["", *_limits_lines(plan.login_roles, budget)]
    return "\n".join(lines) + "\n"


def _limits_lines(logins: tuple[Role, ...], budget: Budget | None) -> list[str]:
    """Each login's limits, then the connection budget."""
    width = max((len(role.name) for role in logins), default=0)
    header = f"  {'login':<{width}}  connections  statement timeout  idle in transaction"
    lines = ["limits (per login)", header]
    for role in logins:
        if role.limits:
            lines.append(
                f"  {role.name:<{width}}  {role.limits.connections:>11}  "
                f"{format_duration(role.limits.statement_timeout_ms):>17}  "
                f"{format_duration(role.limits.idle_in_transaction_timeout_ms):>19}"
            )
    if budget is not None:
        lines.append(f"connection budget: {budget.describe()}")
    return lines


def _rights_rows(
    grants: list[Grant], plan: AccessPlan, schema: str
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(role, object type, privileges) on a schema and on its objects, each
    role's rows together in the plan's order."""
    rows = [(grant.role, grant.object_type, grant.privileges) for grant in grants]
    rows += [
        (role, object_type, privileges)
        for (role, object_type), privileges in plan.object_privileges(schema).items()
    ]
    order: dict[str, int] = {}
    for role, _, _ in rows:
        order.setdefault(role, len(order))
    return sorted(rows, key=lambda row: order[row[0]])

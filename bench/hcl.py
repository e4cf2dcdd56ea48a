"""The access plan (`naapdb.plan`) as an OpenTofu configuration for
cyrilgdn/terraform-provider-postgresql: the peer's side of the comparison.

It declares what `components/access.py` declares with pulumi-postgresql, item
for item and with the same ordering: one `postgresql_role` per role (its
memberships in `roles`, naming the group resources so a member is created
after its groups), one `postgresql_schema`, `postgresql_grant` and
`postgresql_default_privileges` per plan item, PUBLIC's revocations as grants
of nothing to `public`, each schema's privilege resources in one chain and
its group roles one after the other (GRANTs on one catalogue row fail when
they run at once, docs/access.md). Because it walks the plan rather than the
components, a change to the access model shows up here with no edit.

Login passwords are input variables (SCRAM verifiers, as the Pulumi program
sends), not `random_password` resources: the peer is built with the
PostgreSQL provider only, so the Pulumi stack has one RandomPassword per
login that this configuration does not (docs/bench.md counts both).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence

from naapdb import names
from naapdb.plan import AccessPlan, DefaultPrivilege, Grant, Revocation, Role
from naapdb.sql import DENIED_ATTRIBUTES

PROVIDER_SOURCE = "cyrilgdn/postgresql"
PROVIDER_VERSION = "1.27.0"
PUBLIC_GRANTEE = "public"
DENIED = tuple(
    attribute.removeprefix("NO").lower().replace("bypassrls", "bypass_row_level_security")
    for attribute in DENIED_ATTRIBUTES.split()
)
_ATTRIBUTE_NAMES = {"createdb": "create_database", "createrole": "create_role"}


def _string(value: str) -> str:
    """An HCL string literal (JSON's escapes, template markers escaped)."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Reference):
        return value.expression
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no HCL for {value!r}")


class Reference:
    """An expression, written as it is (a resource attribute, a variable)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression


def _block(kind: str, name: str, body: Mapping[str, object], after: Sequence[str] = ()) -> str:
    lines = [f'resource "{kind}" "{name}" {{']
    lines += [f"  {key} = {_value(value)}" for key, value in body.items() if value is not None]
    if after:
        lines.append(f"  depends_on = [{', '.join(after)}]")
    lines.append("}")
    return "\n".join(lines)


def role_address(name: str) -> str:
    return f"postgresql_role.{name}"


def _role(
    role: Role, groups: Sequence[str], passwords: Mapping[str, str], after: str | None
) -> str:
    limits = role.limits
    body: dict[str, object] = {
        "name": role.name,
        "login": role.login,
        "password": Reference(f'var.passwords["{role.name}"]') if role.name in passwords else None,
        "roles": [Reference(f"{role_address(group)}.name") for group in groups] or None,
        "inherit": True,
        **{_ATTRIBUTE_NAMES.get(attribute, attribute): False for attribute in DENIED},
        "connection_limit": limits.connections if limits else -1,
        "statement_timeout": limits.statement_timeout_ms if limits else None,
        "idle_in_transaction_session_timeout": (
            limits.idle_in_transaction_timeout_ms if limits else None
        ),
    }
    return _block("postgresql_role", role.name, body, [after] if after else ())


def _grant(database: str, grant: Grant | Revocation, after: str | None) -> tuple[str, str]:
    if isinstance(grant, Revocation):
        role, privileges, prefix = PUBLIC_GRANTEE, (), "revoke"
    else:
        role, privileges, prefix = grant.role, grant.privileges, "grant"
    name = f"{prefix}_{grant.schema or database}_{role}_{grant.object_type}"
    needs = [address for address in (after,) if address]
    needs += [role_address(role)] if role != PUBLIC_GRANTEE else []
    body = {
        "database": database,
        "role": role,
        "object_type": grant.object_type,
        "schema": grant.schema,
        "privileges": list(privileges),
        "with_grant_option": False if privileges else None,
    }
    return _block("postgresql_grant", name, body, needs), f"postgresql_grant.{name}"


def _default(database: str, default: DefaultPrivilege, after: str | None) -> tuple[str, str]:
    # An owner's own defaults (schema None: PUBLIC's EXECUTE revoked on the
    # functions it creates) are one per schema owner since issue 20.
    scope = default.schema or f"{database}_{default.owner}"
    name = f"default_{scope}_{default.role}_{default.object_type}"
    needs = [address for address in (after,) if address] + [
        role_address(role) for role in (default.owner, default.role) if role != PUBLIC_GRANTEE
    ]
    body = {
        "database": database,
        "owner": default.owner,
        "role": default.role,
        "schema": default.schema,
        "object_type": default.object_type,
        "privileges": list(default.privileges),
        "with_grant_option": False,
    }
    address = f"postgresql_default_privileges.{name}"
    return _block("postgresql_default_privileges", name, body, needs), address


def provider_block(host: str, port: int, database: str, admin: str, max_connections: int) -> str:
    return "\n".join(
        [
            "terraform {",
            "  required_providers {",
            f'    postgresql = {{ source = "{PROVIDER_SOURCE}", version = "{PROVIDER_VERSION}" }}',
            "  }",
            "}",
            'variable "admin_password" {',
            "  type      = string",
            "  sensitive = true",
            "}",
            'variable "passwords" {',
            "  type      = map(string)",
            "  sensitive = true",
            "}",
            'provider "postgresql" {',
            f"  host            = {_string(host)}",
            f"  port            = {port}",
            f"  database        = {_string(database)}",
            f"  username        = {_string(admin)}",
            "  password        = var.admin_password",
            '  sslmode         = "disable"',
            "  superuser       = true",
            "  connect_timeout = 15",
            f"  max_connections = {max_connections}",
            "}",
        ]
    )


def plan_to_hcl(plan: AccessPlan, passwords: Iterable[str]) -> str:
    """The access layer of `plan` as resources; `passwords` names the
    logins that get one (`var.passwords[name]`), as the Pulumi program's."""
    with_password = {name: name for name in passwords}
    return "\n\n".join(_resources(plan, with_password)) + "\n"


def _resources(plan: AccessPlan, passwords: Mapping[str, str]) -> Iterator[str]:
    groups: dict[str, list[str]] = {}
    for membership in plan.memberships:
        groups.setdefault(membership.member, []).append(membership.group)
    database = plan.database
    # components/access.py's dependencies: the database's roles that are
    # members of nothing first; in each schema its group roles one after the
    # other, then its owner and push login; the schema after its owner; then
    # one chain of the schema's privileges (its owner's own default, PUBLIC's
    # EXECUTE revoked, included); the identities after their groups.
    owned_by = {s.owner: s.name for s in plan.schemas if s.owner != names.OWNER}
    for role in plan.roles:
        if role.schema is None and role.name not in groups:
            yield _role(role, (), passwords, None)
    for schema in plan.schemas:
        yield _block(
            "postgresql_schema",
            schema.name,
            {
                "name": schema.name,
                "database": database,
                "owner": Reference(f"{role_address(schema.owner)}.name"),
                "if_not_exists": True,
                "drop_cascade": False,
            },
        )
        previous: str | None = None
        in_schema = [role for role in plan.roles if role.schema == schema.name]
        for role in sorted(in_schema, key=lambda r: r.purpose not in ("rw", "ro")):
            yield _role(role, groups.get(role.name, ()), passwords, previous)
            previous = role_address(role.name)
        last = f"postgresql_schema.{schema.name}"
        for revocation in plan.revocations:
            if revocation.schema == schema.name:
                block, last = _grant(database, revocation, last)
                yield block
        for grant in plan.grants_in(schema.name):
            block, last = _grant(database, grant, last)
            yield block
        for default in plan.default_privileges:
            if (default.schema or owned_by.get(default.owner)) == schema.name:
                block, last = _default(database, default, last)
                yield block
    for role in plan.roles:
        if role.schema is None and role.name in groups:
            yield _role(role, groups[role.name], passwords, None)
    chain: str | None = None
    for revocation in plan.revocations:
        if revocation.schema is None:
            block, chain = _grant(database, revocation, chain)
            yield block
    for grant in plan.database_grants:
        block, chain = _grant(database, grant, chain)
        yield block
    for default in plan.default_privileges:
        if default.schema is None and default.owner not in owned_by:
            yield _default(database, default, None)[0]

"""Hand every object of each schema to its schema's owner, and give it the
rights the plan's default privileges would have given it at creation.

Three paths leave objects with another owner, and `pulumi up` runs this
(as the server's admin, `components/adopt.py`) after the access layer so
that each one heals with `pulumi up` alone:

- a database deployed before schemas had owners of their own: `naap_owner`
  owns every object (docs/access.md, "Moving over");
- `pulumi destroy` with the schemas kept: the provider's REASSIGN OWNED hands
  them to the admin and DROP OWNED takes the groups' rights with them;
- prisma mode: one `prisma db push` creates every schema's objects as
  `naap_owner`, and the push hands them over right after (`acting_as`).

Only objects inside the plan's schemas are touched, never their data, and
only their owner and missing rights: anything else verify reports is a
person's decision. It is the fixes verify lists for `object-owner` and for
a missing grant on an object, run in one transaction. A non-superuser admin
(RDS) is made a member of the roles involved for that transaction only,
as pulumi-postgresql does for the owners it sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from naapdb.plan import AccessPlan
from naapdb.verify.compare import compare
from naapdb.verify.live import Executor, read_live_state
from naapdb.verify.model import MISSING_GRANT, OBJECT_OWNER, Difference


@dataclass(frozen=True)
class Adopted:
    """What adopting changed: objects handed over and rights restored."""

    owners: tuple[Difference, ...]
    grants: tuple[Difference, ...]

    @property
    def changed(self) -> bool:
        return bool(self.owners or self.grants)


def adopt(connection: Any, plan: AccessPlan, acting_as: str | None = None) -> Adopted:
    """Hand over and restore, in one transaction on `connection`
    (autocommit), as its login or, given `acting_as`, as that role."""
    with connection.transaction():
        if acting_as is not None:
            connection.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(acting_as)))
        connection.execute("SET LOCAL search_path TO pg_catalog, pg_temp")
        owners = _of_kind(compare(plan, read_live_state(connection)), OBJECT_OWNER)
        involved = {d.role for d in owners if d.role} | {
            schema.owner for schema in plan.schemas if any(d.schema == schema.name for d in owners)
        }
        borrowed = _borrow(connection, involved)
        _run(connection, owners)
        grants = tuple(
            difference
            for difference in _of_kind(compare(plan, read_live_state(connection)), MISSING_GRANT)
            if difference.target == "object"
        )
        borrowed += _borrow(connection, {_owner_of(plan, d) for d in grants} - set(borrowed))
        _run(connection, grants)
        for role in borrowed:
            connection.execute(sql.SQL("REVOKE {} FROM CURRENT_USER").format(sql.Identifier(role)))
    return Adopted(owners, grants)


def _of_kind(differences: Iterable[Difference], kind: str) -> tuple[Difference, ...]:
    return tuple(difference for difference in differences if difference.kind == kind)


def _owner_of(plan: AccessPlan, difference: Difference) -> str:
    return next(schema.owner for schema in plan.schemas if schema.name == difference.schema)


def _run(connection: Executor, differences: Sequence[Difference]) -> None:
    for difference in differences:
        # A fix is verify's own SQL, composed from identifiers (naapdb.verify).
        connection.execute(difference.fix)


def _borrow(connection: Any, roles: Iterable[str]) -> list[str]:
    """Make a non-superuser login a member of each role it needs and cannot
    yet use (ALTER ... OWNER needs the old owner's rights and SET ROLE to
    the new one; PostgreSQL 16 gives a CREATEROLE admin ADMIN alone on the
    roles it creates); the roles to give back at the end. A superuser needs
    none."""
    row = connection.execute(
        "SELECT rolsuper, pg_catalog.current_setting('server_version_num')::int >= 160000"
        " FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or row[0]:
        return []
    sixteen = bool(row[1])
    usable = (
        "pg_catalog.pg_has_role(current_user, %s, 'USAGE')"
        " AND pg_catalog.pg_has_role(current_user, %s, 'SET')"
        if sixteen
        else "pg_catalog.pg_has_role(current_user, %s, 'USAGE') AND %s IS NOT NULL"
    )
    grant = "GRANT {} TO CURRENT_USER" + (" WITH INHERIT TRUE, SET TRUE" if sixteen else "")
    borrowed = []
    for role in sorted(roles):
        held = connection.execute(
            f"SELECT current_user = %s OR ({usable})", (role, role, role)
        ).fetchone()
        if held is not None and not held[0]:
            connection.execute(sql.SQL(grant).format(sql.Identifier(role)))
            borrowed.append(role)
    return borrowed

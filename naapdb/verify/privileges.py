"""The privilege side of the comparison: the ACLs of the database, the
schemas, their objects and columns; the default privileges; the owners and
the SECURITY DEFINER functions of the objects; event triggers; the ledger.
Mixed into `compare._Comparison`, which holds the plan and the live state."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from psycopg import sql

from naapdb import names
from naapdb.plan import AccessPlan
from naapdb.verify.live import (
    BUILTIN_DEFAULTS,
    DEFAULT_ACL_TYPES,
    OBJECT_TYPE_CODES,
    PUBLIC,
    AclEntry,
    LiveLedgerRow,
    LiveObject,
    LiveState,
)
from naapdb.verify.model import (
    DATABASE_GROUP,
    EVENT_TRIGGER,
    EXTRA_DEFAULT_PRIVILEGE,
    EXTRA_GRANT,
    LEDGER_ROW,
    MISSING_DEFAULT_PRIVILEGE,
    MISSING_GRANT,
    OBJECT_OWNER,
    SECURITY_DEFINER,
    Difference,
    Group,
    in_schema,
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


@dataclass(frozen=True)
class _Target:
    """An object privileges are held on: how messages name it and how SQL does."""

    label: str
    clause: sql.Composable
    group: Group
    column: str | None = None
    owner_clause: sql.Composable | None = None  # ALTER ... OWNER names the exact kind
    kind: str = "object"  # database, schema, object or column


class PrivilegeChecks:
    """The comparison's privilege checks; `found` collects the differences."""

    plan: AccessPlan
    live: LiveState
    found: list[Difference]
    plan_roles: set[str]
    plan_schemas: set[str]
    admins: set[str]

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

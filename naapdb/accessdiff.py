"""The access diff between two plans of one stack (`python -m naapdb diff`):
what a DBA reviews in a pull request instead of a resource diff. Schemas and
login identities added or removed, each login's rights per schema before and
after (`own`/`rw`/`ro`/none, from `naapdb.rights`), memberships gained or
lost, and which changes widen access.

A change *widens* when a login's level on a schema goes up. It is *flagged*
(what `--fail-on-widening` fails on) unless the schema is the login's own
plugin's, or the login is a platform identity (`naap_migrator`, `naap_app`,
`naap_readonly`) reaching a schema added in this change: those hold their
rights on every schema by the access model, so a new plugin is not a
widening by itself, while its `reads:` of another plugin's schema is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from naapdb.plan import AccessPlan, Membership
from naapdb.rights import Level, Rights, rights_of

JSON_FORMAT_VERSION = 1
PLATFORM_PURPOSES = frozenset({"migrator", "app", "readonly"})


@dataclass(frozen=True)
class RightsChange:
    """One login's level on one schema, before and after."""

    login: str
    schema: str
    before: Level
    after: Level
    flagged: bool
    why: str

    @property
    def widens(self) -> bool:
        return self.after > self.before


@dataclass(frozen=True)
class AccessDiff:
    """Everything that changes who may do what, between `base` and `head`."""

    stack: str
    base: str
    head: str
    schemas_added: tuple[str, ...]
    schemas_removed: tuple[str, ...]
    logins_added: tuple[str, ...]
    logins_removed: tuple[str, ...]
    rights: tuple[RightsChange, ...]
    memberships_gained: tuple[Membership, ...]
    memberships_lost: tuple[Membership, ...]
    rotation: tuple[str, str] | None

    @property
    def changed(self) -> bool:
        return bool(
            self.schemas_added
            or self.schemas_removed
            or self.logins_added
            or self.logins_removed
            or self.rights
            or self.memberships_gained
            or self.memberships_lost
            or self.rotation
        )

    @property
    def flagged(self) -> tuple[RightsChange, ...]:
        """Widenings beyond a login's own plugin's schema (module docstring)."""
        return tuple(change for change in self.rights if change.flagged)


def diff_plans(
    stack: str, base: str, head: str, before: AccessPlan, after: AccessPlan
) -> AccessDiff:
    """Compare two plans of `stack`; `base` and `head` name them in the output."""
    old, new = rights_of(before), rights_of(after)
    schemas_added = _missing_from(new.schemas, old.schemas)
    old_memberships, new_memberships = set(before.memberships), set(after.memberships)
    rotation = (
        (before.rotation.value, after.rotation.value)
        if before.rotation is not after.rotation
        else None
    )
    return AccessDiff(
        stack=stack,
        base=base,
        head=head,
        schemas_added=schemas_added,
        schemas_removed=_missing_from(old.schemas, new.schemas),
        logins_added=_missing_from(new.identities, old.identities),
        logins_removed=_missing_from(old.identities, new.identities),
        rights=tuple(_rights_changes(old, new, after, set(schemas_added))),
        memberships_gained=tuple(m for m in after.memberships if m not in old_memberships),
        memberships_lost=tuple(m for m in before.memberships if m not in new_memberships),
        rotation=rotation,
    )


def _missing_from(names: tuple[str, ...], other: tuple[str, ...]) -> tuple[str, ...]:
    present = set(other)
    return tuple(name for name in names if name not in present)


def _rights_changes(
    old: Rights, new: Rights, after: AccessPlan, added_schemas: set[str]
) -> list[RightsChange]:
    """Every (login, schema) whose level differs, logins in the new plan's
    order then removed ones, schemas likewise. Only pairs holding rights on
    either side are looked at: linear in the rights, not logins x schemas."""
    logins = (*new.identities, *_missing_from(old.identities, new.identities))
    schemas = (*new.schemas, *_missing_from(old.schemas, new.schemas))
    login_order = {login: index for index, login in enumerate(logins)}
    schema_order = {schema: index for index, schema in enumerate(schemas)}
    purpose = {role.name: role.purpose for role in after.roles}
    differing = sorted(
        (
            pair
            for pair in old.levels.keys() | new.levels.keys()
            if old.levels.get(pair) != new.levels.get(pair)
        ),
        key=lambda pair: (login_order[pair[0]], schema_order[pair[1]]),
    )
    changes = []
    for login, schema in differing:
        before, after_level = old.level(login, schema), new.level(login, schema)
        flagged, why = _judge(
            login, schema, before, after_level, new, purpose.get(login), added_schemas
        )
        changes.append(RightsChange(login, schema, before, after_level, flagged, why))
    return changes


def _judge(
    login: str,
    schema: str,
    before: Level,
    after: Level,
    new: Rights,
    purpose: str | None,
    added_schemas: set[str],
) -> tuple[bool, str]:
    """(flagged, why) of one change, as the module docstring rules."""
    if after < before:
        return False, "narrows"
    if new.own_schema.get(login) == schema:
        return False, "widens: its own plugin's schema"
    if purpose in PLATFORM_PURPOSES and schema in added_schemas:
        return False, "widens: new schema (a platform login, as on every schema)"
    return True, "WIDENS: not its own plugin's schema"


def diff_to_text(diff: AccessDiff) -> str:
    if not diff.changed:
        return f"{_no_change(diff)}\n"
    lines = [f"access diff of stack {diff.stack}: {diff.base} -> {diff.head}"]
    lines += _listed("schemas added", diff.schemas_added)
    lines += _listed("schemas removed (schema and data kept)", diff.schemas_removed)
    lines += _listed("logins added", diff.logins_added)
    lines += _listed("logins removed", diff.logins_removed)
    if diff.rotation:
        lines.append(f"rotation: {diff.rotation[0]} -> {diff.rotation[1]}")
    if diff.rights:
        lines.append("rights (login  schema  before -> after):")
        login_width = max(len(change.login) for change in diff.rights)
        schema_width = max(len(change.schema) for change in diff.rights)
        for change in diff.rights:
            lines.append(
                f"  {change.login:<{login_width}}  {change.schema:<{schema_width}}  "
                f"{change.before.word:>4} -> {change.after.word:<4}  {change.why}"
            )
    for title, memberships in (
        ("memberships gained", diff.memberships_gained),
        ("memberships lost", diff.memberships_lost),
    ):
        if memberships:
            lines.append(f"{title} (member -> group):")
            lines += [f"  {m.member} -> {m.group}" for m in memberships]
    lines.append(_verdict(diff))
    return "\n".join(lines) + "\n"


def diff_to_markdown(diff: AccessDiff) -> str:
    """For a pull-request comment and the job summary."""
    title = f"### Access diff: stack `{diff.stack}`, `{diff.base}` → {diff.head}"
    if not diff.changed:
        return f"{title}\n\n{_no_change(diff)}.\n"
    lines = [title, "", f"**{_verdict(diff)}**", ""]
    for label, items in (
        ("schemas added", diff.schemas_added),
        ("schemas removed (schema and data kept)", diff.schemas_removed),
        ("logins added", diff.logins_added),
        ("logins removed", diff.logins_removed),
    ):
        if items:
            lines.append(f"- {label}: " + ", ".join(f"`{item}`" for item in items))
    if diff.rotation:
        lines.append(f"- rotation: `{diff.rotation[0]}` → `{diff.rotation[1]}`")
    if diff.rights:
        lines += [
            "",
            "| login | schema | before | after | |",
            "| --- | --- | :---: | :---: | --- |",
        ]
        for change in diff.rights:
            why = f"**{change.why}**" if change.flagged else change.why
            lines.append(
                f"| `{change.login}` | `{change.schema}` | {change.before.label} | "
                f"{change.after.label} | {why} |"
            )
    gained, lost = diff.memberships_gained, diff.memberships_lost
    if gained or lost:
        lines += [
            "",
            f"<details><summary>memberships: {len(gained)} gained, {len(lost)} lost</summary>",
            "",
        ]
        lines += [f"- gained: `{m.member}` → `{m.group}`" for m in gained]
        lines += [f"- lost: `{m.member}` → `{m.group}`" for m in lost]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def diff_to_json(diff: AccessDiff) -> str:
    data: dict[str, Any] = {
        "format_version": JSON_FORMAT_VERSION,
        "stack": diff.stack,
        "base": diff.base,
        "head": diff.head,
        "changed": diff.changed,
        "schemas": {"added": list(diff.schemas_added), "removed": list(diff.schemas_removed)},
        "logins": {"added": list(diff.logins_added), "removed": list(diff.logins_removed)},
        "rotation": list(diff.rotation) if diff.rotation else None,
        "rights": [
            {
                "login": change.login,
                "schema": change.schema,
                "before": change.before.word,
                "after": change.after.word,
                "widens": change.widens,
                "flagged": change.flagged,
            }
            for change in diff.rights
        ],
        "memberships": {
            "gained": [asdict(m) for m in diff.memberships_gained],
            "lost": [asdict(m) for m in diff.memberships_lost],
        },
        "flagged": len(diff.flagged),
    }
    return json.dumps(data, indent=2) + "\n"


def _no_change(diff: AccessDiff) -> str:
    return f"no access change in stack {diff.stack} between {diff.base} and {diff.head}"


def _verdict(diff: AccessDiff) -> str:
    flagged = diff.flagged
    if not flagged:
        return "no login gains rights beyond its own plugin's schema"
    shown = ", ".join(f"{c.login} {c.after.word} on {c.schema}" for c in flagged[:5])
    more = f" and {len(flagged) - 5} more" if len(flagged) > 5 else ""
    count = "1 change widens" if len(flagged) == 1 else f"{len(flagged)} changes widen"
    return f"{count} access beyond a login's own plugin's schema: {shown}{more}"


def _listed(title: str, items: tuple[str, ...]) -> list[str]:
    return [f"{title}: {', '.join(items)}"] if items else []

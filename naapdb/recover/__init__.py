"""Recovery after a `pulumi up` that did not finish (killed, out of memory, a
CI runner gone), so that the next `pulumi up` completes with no hand work.

naap-db runs updates with `PULUMI_SKIP_CHECKPOINTS=true` (docs/recovery.md):
the engine saves the state once, at the end. An update killed midway
therefore leaves every object it created unknown to the state, and the stack
locked. Re-creating a role then fails on "already exists", and so does a
fixed-name Docker object. Recovery, in order:

1. the lock: `--unlock` removes it (`pulumi cancel`); without it, a lock a
   process of this machine left and that process is gone is removed too
   (`lock`), and any other lock stops recovery;
2. the state (`pulumi stack export --show-secrets`, `state`);
3. the dev stack's container, network and pooler container that exist with
   this stack's labels but not in the state (`live`, `expected`);
4. when the state has no admin provider (a first update killed), a targeted
   `pulumi up` of the server chain creates it and what it needs, nothing
   more (the Docker objects of step 3 are imported first, so nothing is
   created twice);
5. the roles of the plan that exist on the server (read as the stack's admin,
   with the provider's own credentials from the state) but not in the state;
6. steps 3 and 5 in one `pulumi import --file` (`importfile`);
7. roles the state still holds that the server no longer has: an update
   killed after dropping a removed plugin's roles leaves their resources in
   the state, and `pulumi up` would fail revoking from them and dropping
   them. Each such role the plan no longer declares is created again as an
   empty NOLOGIN placeholder, so that `pulumi up` drops it as it planned,
   through the provider and in its order; the resources naming a role the
   plan still declares leave the state by a targeted `pulumi refresh`, and
   `pulumi up` creates them again.

When nothing is missing it only reads: one export, one query (and, in dev,
`docker inspect`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from naapdb import names, urns
from naapdb.project import PROJECT_FILE, read_yaml
from naapdb.recover import expected, importfile, live, lock
from naapdb.recover.cli import PulumiCli
from naapdb.recover.errors import RecoverError
from naapdb.recover.state import StackState
from naapdb.settings import ContainerServer, StackSettings

Connect = Callable[..., Any]
DockerLookup = Callable[[str, str], "live.DockerObject | None"]


@dataclass
class Recovery:
    """What recovery needs: the stack, its settings, and how to reach the
    CLI, the server and Docker (tests hand in their own)."""

    stack: str
    settings: StackSettings
    project: Path
    cli: PulumiCli
    connect: Connect
    docker: DockerLookup = live.docker_object
    docker_version: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Callable[[str], None] = print

    @functools.cached_property
    def project_name(self) -> str:
        """Pulumi.yaml's `name`, read once (a URN per role needs it)."""
        document = read_yaml(self.project / PROJECT_FILE) or {}
        return str(document.get("name", ""))

    def urn(self, node: urns.Node) -> str:
        return node.urn(self.stack, self.project_name)


def recover(recovery: Recovery, unlock: bool = False, dry_run: bool = False) -> bool:
    """Run the steps of the module docstring; True when anything changed
    (or, with `dry_run`, would change). Prints each step through `out`."""
    out = recovery.out
    changed = _unlock(recovery, unlock, dry_run)
    state = StackState.from_export(recovery.cli.export())
    found = _docker_adoptions(recovery, state)
    provider = recovery.urn(urns.admin_provider())
    if provider not in state:
        chain = expected.server_chain(recovery.settings)
        if chain is None or not _server_exists(recovery, state, found):
            out(
                "nothing to recover: the state has no admin provider, and "
                + (
                    "this stack keeps checkpoints, so no role was created without it"
                    if chain is None
                    else "no server container exists, so no role can either"
                )
            )
            return changed
        if found:
            _import(recovery, state, found, dry_run)
            found = []
        out(
            "the state has no admin provider (an update killed before its end): a targeted "
            "`pulumi up` creates it and the server it needs, nothing of the access layer"
        )
        if dry_run:
            out("dry run: the roles to adopt are known once the provider exists")
            return True
        recovery.cli.up_targets([recovery.urn(node) for node in chain])
        state = StackState.from_export(recovery.cli.export())
        changed = True
    references = state.role_references()
    candidates = expected.roles(recovery.settings)
    planned = {role.object for role in candidates}
    named = frozenset().union(*references.values())
    with recovery.connect(state.admin_conninfo(provider), autocommit=True) as connection:
        existing = live.existing_roles(connection, planned | named)
        dropped = sorted(named - existing - planned)
        if dropped:
            out(
                f"placeholders: {len(dropped)} roles a killed update dropped are still in the "
                "state; each is created again, NOLOGIN and owning nothing, so that `pulumi up` "
                "finishes dropping it as it planned"
            )
            if not dry_run:
                live.create_placeholders(connection, dropped)
            changed = True
    found += [
        importfile.Adoption(role, role.object)
        for role in candidates
        if role.object in existing and recovery.urn(role.node) not in state
    ]
    if found:
        _import(recovery, state, found, dry_run)
        changed = True
    gone = planned - existing
    stale = sorted(urn for urn, roles in references.items() if roles & gone)
    if stale:
        out(f"refresh: {len(stale)} resources of the state name a role of the plan that is gone")
        if not dry_run:
            recovery.cli.refresh_targets(stale)
        changed = True
    if not changed:
        out("nothing to recover: the state knows every object of the stack that exists")
    return changed


def _server_exists(recovery: Recovery, state: StackState, found: list[importfile.Adoption]) -> bool:
    """Whether the stack's server may hold roles: always for an existing
    server; for the dev container, when the container is there."""
    if not isinstance(recovery.settings.server, ContainerServer):
        return True
    container = expected.docker_objects(recovery.settings)[0]
    return recovery.urn(container.node) in state or any(a.what == container for a in found)


def _unlock(recovery: Recovery, unlock: bool, dry_run: bool) -> bool:
    """Remove the stack's lock when asked, or when it is provably stale."""
    out = recovery.out
    if unlock:
        out("unlock: `pulumi cancel` (--unlock: no update runs on this stack)")
        if not dry_run:
            recovery.cli.cancel()
        return True
    url = lock.backend_url(recovery.project, recovery.environ)
    locks = lock.file_locks(url, recovery.project_name, recovery.stack)
    if not locks:
        return False
    held = [item for item in locks if not item.stale]
    if held:
        raise RecoverError(
            f"stack {recovery.stack} is locked by "
            + "; ".join(item.describe() for item in held)
            + ": an update may be running. If none runs on this stack now, run "
            f"`bin/naapdb recover --stack {recovery.stack} --unlock`"
        )
    for item in locks:
        out(f"unlock: the lock of {item.describe()} is stale (that process is gone)")
    if not dry_run:
        recovery.cli.cancel()
    return True


def _docker_adoptions(recovery: Recovery, state: StackState) -> list[importfile.Adoption]:
    """The dev stack's Docker objects that exist, carry this stack's labels,
    and are not in the state. One of that name without them is refused."""
    wanted = names.stack_labels(recovery.settings.stack)
    found = []
    for item in expected.docker_objects(recovery.settings):
        if recovery.urn(item.node) in state:
            continue
        existing = recovery.docker(item.kind, item.object)
        if existing is None:
            continue
        if any(existing.labels.get(key) != value for key, value in wanted.items()):
            raise RecoverError(
                f"a Docker {item.kind} named {item.object} exists but is not stack "
                f"{recovery.settings.stack}'s (labels {sorted(existing.labels.items())}); "
                f"`pulumi up` cannot create its own: remove or rename that {item.kind}"
            )
        found.append(importfile.Adoption(item, existing.id))
    return found


def _import(
    recovery: Recovery,
    state: StackState,
    adoptions: list[importfile.Adoption],
    dry_run: bool,
) -> None:
    for adoption in adoptions:
        what = adoption.what
        recovery.out(f"import: {what.node.type} {what.node.name} ({what.kind} {what.object})")
    document = importfile.import_file(
        adoptions, state, recovery.stack, recovery.project_name, recovery.docker_version
    )
    if not dry_run:
        recovery.cli.import_resources(document)

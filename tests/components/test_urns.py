"""What `recover` predicts of the program (naapdb/urns.py, naapdb/recover/
expected.py) against what the program registers under mocks, for each
server kind: every role, Docker object and admin provider it would import or
create is registered under the same type, name and chain of parents (a
URN), and the targeted `pulumi up` it runs when the provider is missing
names everything the provider waits for, or the engine would refuse it
("untargeted create")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from naapdb import urns
from naapdb.recover import expected
from naapdb.settings import StackSettings, parse_settings
from naapdb.stackfiles import read_raw_config
from tests import harness
from tests.harness import Resource, Run

ROOT = harness.ROOT
EXTERNAL = {
    "naap-db:server": {"kind": "external", "host": "db.internal", "port": 5432},
    "naap-db:adminPassword": {"secure": "v1:placeholder"},
}
CASES: dict[str, tuple[str, Mapping[str, Any]]] = {
    "dev": ("dev", {}),
    "dev with a container pooler": ("dev", {"naap-db:pooler": {"kind": "container"}}),
    "prod": ("prod", {}),
    "external": ("dev", EXTERNAL),
}


def settings_of(stack: str, overrides: Mapping[str, Any]) -> StackSettings:
    """The settings `recover` reads for a stack whose files hold `overrides`."""
    raw = dict(read_raw_config(ROOT, stack))
    raw.update({key.removeprefix("naap-db:"): value for key, value in overrides.items()})
    return parse_settings(stack, raw)


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest, lambda_zip: Any) -> tuple[Run, StackSettings]:
    stack, overrides = CASES[request.param]
    # A preview: an external server is not asked for TLS.
    return harness.run_program(stack, overrides, preview=True), settings_of(stack, overrides)


def lineage(run: Run, resource: Resource) -> tuple[tuple[str, str], ...]:
    """(type, name) from the top component down to `resource`: its URN."""
    chain = [(resource.type, resource.name)]
    while resource.parent in run.urns:
        resource = run.urns[resource.parent]
        chain.append((resource.type, resource.name))
    return tuple(reversed(chain))


def registered(run: Run, node: urns.Node) -> Resource:
    found = [r for r in run.resources if (r.type, r.name) == (node.type, node.name)]
    assert len(found) == 1, f"{node.type} {node.name} registered {len(found)} times"
    assert lineage(run, found[0]) == tuple((n.type, n.name) for n in node.lineage())
    return found[0]


def test_every_role_is_registered_where_recover_imports_it(
    case: tuple[Run, StackSettings],
) -> None:
    run, settings = case
    roles = expected.roles(settings)
    for role in roles:
        assert registered(run, role.node).inputs["name"] == role.object
    assert len(run.of_type(urns.ROLE_TYPE)) == len(roles)


def test_every_fixed_name_docker_object_is_covered(case: tuple[Run, StackSettings]) -> None:
    run, settings = case
    covered = expected.docker_objects(settings)
    for item in covered:
        assert registered(run, item.node).inputs["name"] == item.object
    declared = run.of_type(urns.CONTAINER_TYPE) + run.of_type(urns.NETWORK_TYPE)
    assert {(r.type, r.name) for r in declared} == {(i.node.type, i.node.name) for i in covered}


def test_the_admin_provider_is_where_recover_looks_for_it(case: tuple[Run, StackSettings]) -> None:
    run, _ = case
    provider = registered(run, urns.admin_provider())
    for role in run.of_type(urns.ROLE_TYPE):
        assert role.provider.startswith(provider.urn + "::")


def test_the_targeted_up_names_everything_the_provider_needs(
    case: tuple[Run, StackSettings],
) -> None:
    """Each member's parent, dependencies and explicit provider are members
    too (the stack and default providers aside), and nothing of the access
    layer is one."""
    run, settings = case
    chain = expected.server_chain(settings)
    if settings.server.kind == "rds":
        assert chain is None
        return
    assert chain is not None and chain[-1] == urns.admin_provider()
    members = {registered(run, node).urn for node in chain}
    for urn in members:
        resource = run.urns[urn]
        needed = {*resource.dependencies, resource.parent}
        if resource.provider:
            needed.add(resource.provider.rsplit("::", 1)[0])
        outside = {u for u in needed if u in run.urns} - members
        assert not outside, f"{resource.name} waits for {sorted(outside)}, not targeted"
    assert not any(run.urns[urn].type.startswith("postgresql:index") for urn in members)


def test_urns_are_pulumis_form() -> None:
    role = urns.Node(urns.ROLE_TYPE, "r", urns.schema_access("plugin_x"))
    assert role.urn("org/naap-db/dev", "naap-db") == (
        "urn:pulumi:dev::naap-db::naap:database:NaapDatabase$naap:database:DatabaseAccess"
        "$naap:database:SchemaAccess$postgresql:index/role:Role::r"
    )

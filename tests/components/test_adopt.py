"""`OwnershipAdoption` in the real program, under mocks: `naapdb adopt` as
the server's admin, after every access resource and before the push, its
admin URL in a secret environment, re-run exactly when a schema's owner (or
the server) changes."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from components.adopt import owners_hash
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.components.test_push import ACCESS, COMMAND, descendants, the_push
from tests.harness import Run

ADOPT = "naap:database:OwnershipAdoption"


def the_adoption(run: Run) -> harness.Resource:
    component = run.one(ADOPT)
    [command] = [r for r in run.of_type(COMMAND) if r.parent == component.urn]
    return command


@pytest.fixture(scope="module")
def dev() -> Run:
    return harness.run_program("dev")


def test_it_runs_as_the_admin_from_a_secret_environment(dev: Run) -> None:
    command = the_adoption(dev)
    assert command.inputs["create"] == command.inputs["update"]
    assert command.inputs["create"].endswith(" -m naapdb adopt --stack dev")
    assert "delete" not in command.inputs
    assert command.is_secret("environment")
    url = urlsplit(command.inputs["environment"]["DATABASE_URL"])
    server = next(r for r in dev.resources if r.type == "pulumi:providers:postgresql")
    assert (url.username, url.hostname, url.port, url.path) == (
        "postgres",
        "127.0.0.1",
        5432,
        "/naap",
    )
    assert url.password and url.password not in command.inputs["create"]
    assert server.inputs["username"] == "postgres"
    assert parse_qs(url.query)["sslmode"] == ["disable"]
    assert command.inputs["logging"] == "stdout"
    assert set(command.additional_secret_outputs) >= {"stdout", "stderr"}


def test_it_waits_for_the_access_layer_and_the_push_waits_for_it(dev: Run) -> None:
    adoption = the_adoption(dev)
    access = [r for r in descendants(dev, dev.one(ACCESS)) if r.custom]
    waited = dev.waits_for(adoption)
    assert all(resource.urn in waited for resource in access)
    assert adoption.urn in dev.waits_for(the_push(dev))


def test_it_runs_again_when_an_owner_or_the_server_changes(dev: Run, lambda_zip: Path) -> None:
    settings = load_stack_settings("dev", harness.ROOT)
    triggers = the_adoption(dev).inputs["triggers"]
    assert triggers[0] == owners_hash(settings)
    assert len(triggers) == 2  # and the server's identity
    entries = [
        {"plugin": e.plugin, "schema": e.schema, "reads": list(e.reads)}
        for e in settings.catalog.plugins
    ]
    grown = harness.run_program(
        "dev",
        {"naap-db:plugins": [*entries, {"plugin": "invoices", "schema": "plugin_invoices"}]},
    )
    assert the_adoption(grown).inputs["triggers"][0] != triggers[0]
    again = harness.run_program("dev")
    assert the_adoption(again).inputs["triggers"] == triggers

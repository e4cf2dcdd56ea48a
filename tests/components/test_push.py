"""`SchemaPush` in the real program, under mocks: the hook runs after every
access resource, with its connection in a secret environment, and re-runs
exactly when a migration file (or the server) changes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from components import push as push_component
from naapdb import names
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import Run

ROOT = harness.ROOT
COMMAND = "command:local:Command"
PUSH = "naap:database:SchemaPush"
ACCESS = "naap:database:DatabaseAccess"
FIXTURES = ROOT / "tests" / "fixtures" / "prisma"


def the_push(run: Run) -> harness.Resource:
    component = run.one(PUSH)
    [command] = [r for r in run.of_type(COMMAND) if r.parent == component.urn]
    return command


def push_override(**push: Any) -> dict[str, Any]:
    return {"naap-db:push": push}


@pytest.fixture(scope="module")
def dev() -> Run:
    return harness.run_program("dev")


@pytest.fixture(scope="module")
def prod(lambda_zip: Path) -> Run:
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    credentials = {**stack["config"]["naap-db:credentials"], "lambdaArchive": str(lambda_zip)}
    return harness.run_program("prod", {"naap-db:credentials": credentials})


def descendants(run: Run, ancestor: harness.Resource) -> list[harness.Resource]:
    found, frontier = [], [ancestor.urn]
    while frontier:
        parent = frontier.pop()
        for resource in run.resources:
            if resource.parent == parent:
                found.append(resource)
                frontier.append(resource.urn)
    return found


# ---------------------------------------------------------------- dev (single rotation)


def test_the_push_is_a_child_of_the_database(dev: Run) -> None:
    component = dev.one(PUSH)
    assert component.parent == dev.one("naap:database:NaapDatabase").urn
    command = the_push(dev)
    assert command.name == f"{component.name}-command"
    assert command.inputs["create"] == command.inputs["update"]
    assert command.inputs["create"].endswith(" -m naapdb push --stack dev --source migrations")
    assert "delete" not in command.inputs  # nothing is ever dropped


def test_the_connection_is_a_secret_environment_never_argv(dev: Run) -> None:
    command = the_push(dev)
    assert command.is_secret("environment")
    url = command.inputs["environment"]["DATABASE_URL"]
    password = next(
        r.state["result"]
        for r in dev.of_type("random:index/randomPassword:RandomPassword")
        if (r.inputs.get("keepers") or {}).get("role") == names.MIGRATOR
    )
    assert url == f"postgresql://{names.MIGRATOR}:{password}@127.0.0.1:5432/naap?sslmode=disable"
    assert password not in command.inputs["create"]
    assert set(command.inputs["environment"]) == {"DATABASE_URL", "NAAPDB_PUSH_KEY"}
    key = dev.outputs["push_key"]
    assert command.inputs["environment"]["NAAPDB_PUSH_KEY"] == key
    assert "push_key" in dev.secret_outputs and key not in command.inputs["create"]


def test_nothing_it_prints_is_kept_in_plaintext(dev: Run) -> None:
    command = the_push(dev)
    assert command.inputs["logging"] == "stdout"
    assert set(command.additional_secret_outputs) >= {"stdout", "stderr"}
    assert command.inputs["addPreviousOutputInEnv"] is False


def test_it_waits_for_every_access_resource(dev: Run) -> None:
    command = the_push(dev)
    access = [r for r in descendants(dev, dev.one(ACCESS)) if r.custom]
    assert {r.type for r in access} >= {
        "postgresql:index/role:Role",
        "postgresql:index/schema:Schema",
        "postgresql:index/grant:Grant",
        "postgresql:index/defaultPrivileges:DefaultPrivileges",
    }
    missing = [r.name for r in access if r.urn not in dev.waits_for(command)]
    assert missing == []
    # ...through the access layer's frontier, not one dependency per resource
    # (15,000 at 1,000 plugins, which the SDK handles in quadratic time).
    direct = [r for r in access if r.urn in command.dependencies]
    assert len(direct) < len(access) / 2


def test_triggers_are_the_migrations_hash_and_the_server_identity(dev: Run) -> None:
    digest, identity = the_push(dev).inputs["triggers"]
    settings = load_stack_settings("dev", ROOT)
    assert digest == push_component.source_hash(settings.push)
    container = dev.one("docker:index/container:Container")
    assert identity == container.id


# ---------------------------------------------------------------- when it re-runs


@pytest.fixture
def source(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", target)
    return target


def _digest(source: Path) -> str:
    run = harness.run_program("dev", push_override(mode="sql", source=str(source)))
    command = the_push(run)
    assert command.inputs["create"].endswith(f"--source {source}")
    return str(command.inputs["triggers"][0])


def test_triggers_change_with_a_migration_file_and_not_otherwise(source: Path, dev: Run) -> None:
    unchanged = _digest(source)
    # The same files elsewhere: the same hash as the committed tree.
    assert unchanged == the_push(dev).inputs["triggers"][0]
    assert _digest(source) == unchanged
    (source / "public" / ".gitkeep").write_text("")  # hidden files are not sources
    assert _digest(source) == unchanged

    wallet = source / "plugin_wallet" / "0001_wallets.sql"
    wallet.write_text(wallet.read_text() + "\n-- a comment is a change too\n")
    edited = _digest(source)
    assert edited != unchanged

    (source / "plugin_wallet" / "0002_labels.sql").write_text("SELECT 1;\n")
    added = _digest(source)
    assert added not in (unchanged, edited)

    (source / "plugin_wallet" / "0002_labels.sql").rename(
        source / "plugin_wallet" / "0002_tags.sql"
    )
    assert _digest(source) not in (unchanged, edited, added)


def test_a_missing_source_directory_fails_naming_the_key(tmp_path: Path) -> None:
    run = harness.run_program(
        "dev", push_override(mode="sql", source=str(tmp_path / "nowhere")), raise_errors=False
    )
    assert run.error is not None
    assert str(run.error).startswith("naap-db:push.source: ")
    assert [r.name for r in run.of_type(COMMAND) if "-push-" in r.name] == []


def test_mode_off_declares_no_push() -> None:
    run = harness.run_program("dev", push_override(mode="off"))
    assert run.of_type(PUSH) == []


def test_prisma_mode_hashes_the_prisma_schema(tmp_path: Path) -> None:
    directory = tmp_path / "database"
    (directory / "prisma").mkdir(parents=True)
    schema = directory / "prisma" / "schema.prisma"
    shutil.copy(FIXTURES / "platform.prisma", schema)
    override = push_override(mode="prisma", prismaDir=str(directory))
    first = the_push(harness.run_program("dev", override))
    assert first.inputs["create"].endswith(f"push --stack dev --prisma {directory}")
    assert first.is_secret("environment")
    assert (
        the_push(harness.run_program("dev", override)).inputs["triggers"]
        == first.inputs["triggers"]
    )
    schema.write_text(
        schema.read_text() + '\nmodel Extra {\n  id String @id\n  @@schema("public")\n}\n'
    )
    again = the_push(harness.run_program("dev", override))
    assert again.inputs["triggers"][0] != first.inputs["triggers"][0]


def test_the_command_is_the_same_on_every_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_stack_settings("dev", ROOT)
    monkeypatch.setattr(sys, "executable", str(ROOT / "venv" / "bin" / "python"))
    assert push_component.push_command(settings) == (
        "venv/bin/python -m naapdb push --stack dev --source migrations"
    )
    monkeypatch.setattr(sys, "executable", "/opt/python 3/bin/python")
    assert push_component.push_command(settings).startswith("'/opt/python 3/bin/python' -m naapdb")


# ---------------------------------------------------------------- prod (alternating rotation)


def test_prod_reads_the_migrators_current_login_from_secrets_manager(prod: Run) -> None:
    command = the_push(prod)
    assert command.is_secret("environment")
    environment = command.inputs["environment"]
    # The committed RDS CA bundle is the push's default: no variable needed.
    assert set(environment) == {"NAAPDB_DATABASE_SECRET_ID", "AWS_REGION", "NAAPDB_PUSH_KEY"}
    assert environment["AWS_REGION"] == "us-east-1"
    secrets = [
        r
        for r in prod.of_type("aws:secretsmanager/secret:Secret")
        if r.name.endswith(names.MIGRATOR) or names.MIGRATOR in str(r.inputs.get("name", ""))
    ]
    assert len(secrets) == 1
    assert environment["NAAPDB_DATABASE_SECRET_ID"] == secrets[0].state["arn"]
    assert command.inputs["create"].endswith("naapdb push --stack prod --source migrations")


def test_prod_push_waits_for_every_access_resource(prod: Run) -> None:
    command = the_push(prod)
    access = [r for r in descendants(prod, prod.one(ACCESS)) if r.custom]
    assert access
    assert [r.name for r in access if r.urn not in prod.waits_for(command)] == []
    instance = prod.one("aws:rds/instance:Instance")
    assert command.inputs["triggers"][1] == instance.state["resourceId"]


def test_an_rds_stack_on_single_rotation_pushes_over_verify_full_with_the_bundle() -> None:
    """Issue 21, gap 3: the migrator's URL names the RDS CA bundle, so the
    push verifies the instance with it rather than whatever libpq finds."""
    run = harness.run_program("prod", {"naap-db:credentials": {"rotation": "single"}})
    environment = the_push(run).inputs["environment"]
    assert set(environment) == {"DATABASE_URL", "NAAPDB_PUSH_KEY"}
    params = conninfo_to_dict(environment["DATABASE_URL"])
    assert params["sslmode"] == "verify-full"
    assert params["sslrootcert"] == "naapdb/rds-ca-bundle.pem"  # project-relative, as the push runs


def test_a_trusted_ca_bundle_reaches_the_push_with_its_flag(
    tmp_path: Path, lambda_zip: Path
) -> None:
    bundle = tmp_path / "govcloud-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    overrides = {
        "naap-db:server": {
            **stack["naap-db:server"],
            "caBundle": str(bundle),
            "trustCaBundle": True,
        },
        "naap-db:credentials": {**stack["naap-db:credentials"], "lambdaArchive": str(lambda_zip)},
    }
    environment = the_push(harness.run_program("prod", overrides)).inputs["environment"]
    assert environment["NAAPDB_SSLROOTCERT"] == str(bundle)
    assert environment["NAAPDB_TRUST_CA_BUNDLE"] == "1"


def test_a_symlinked_migration_stops_the_preview(tmp_path: Path) -> None:
    source = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", source)
    secret = tmp_path / "runner-secret"
    secret.write_text("not for the push")
    (source / "public" / "0004_x.sql").symlink_to(secret)
    run = harness.run_program(
        "dev", push_override(mode="sql", source=str(source)), raise_errors=False
    )
    assert run.error is not None
    assert str(run.error) == (
        f"naap-db:push.source: {source / 'public' / '0004_x.sql'} is a symbolic link; "
        "migrations must be regular files of the source tree"
    )

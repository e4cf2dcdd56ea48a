"""Stack settings: each bad value is refused with one line naming the key,
through the command line exactly as a user would meet it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb.errors import ConfigError
from naapdb.plan import Rotation
from naapdb.settings import SECRET, parse_settings
from naapdb.stackfiles import find_project_root, load_stack_settings, read_raw_config

ROOT = find_project_root()


def dev_raw(**changes: Any) -> dict[str, Any]:
    raw = read_raw_config(ROOT, "dev")
    raw.update(changes)
    return raw


def refused(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings("dev", raw)
    return caught.value


def test_committed_stacks_parse() -> None:
    dev, prod = load_stack_settings("dev"), load_stack_settings("prod")
    assert dev.server.kind == "container" and dev.credentials.rotation is Rotation.SINGLE
    assert prod.server.kind == "rds" and prod.credentials.rotation is Rotation.ALTERNATING
    assert prod.production and not dev.production


def test_unknown_top_level_key() -> None:
    error = refused(dev_raw(plugin=[]))
    assert error.key == "naap-db:plugin" and "unknown key" in error.message


def test_plaintext_admin_password_of_an_external_server() -> None:
    external = {"kind": "external", "host": "db.example.com"}
    error = refused(dev_raw(server=external, adminPassword="hunter22"))
    assert error.key == "naap-db:adminPassword" and "--secret" in error.message


@pytest.mark.parametrize("kind", ["container", "rds"])
def test_plaintext_admin_password_of_a_kind_that_never_reads_it(kind: str) -> None:
    """Told to encrypt it, the user would meet a second error saying the key
    is not used at all: the first message says that, and how to remove it."""
    server = {"kind": kind, "vpcId": "vpc-1", "subnetIds": ["subnet-1", "subnet-2"]}
    raw = dev_raw(server=server if kind == "rds" else {"kind": kind}, adminPassword="hunter22")
    error = refused(raw)
    assert error.key == "naap-db:adminPassword"
    assert "is not used" in error.message and "--secret" not in error.message
    assert "pulumi config rm naap-db:adminPassword" in error.message
    assert "hunter22" not in str(error)


def test_password_inside_server_object() -> None:
    error = refused(dev_raw(server={"kind": "container", "password": SECRET}))
    assert error.key == "naap-db:server.password"


def test_plaintext_token_anywhere() -> None:
    error = refused(dev_raw(push={"mode": "sql", "apiToken": "abc"}))
    assert error.key == "naap-db:push.apiToken"


def test_unknown_rotation() -> None:
    error = refused(dev_raw(credentials={"rotation": "weekly"}))
    assert error.key == "naap-db:credentials.rotation"


def test_epoch_for_unknown_role() -> None:
    error = refused(dev_raw(credentials={"epochs": {"naap_nobody": 1}}))
    assert error.key == "naap-db:credentials.epochs.naap_nobody"


def test_epoch_for_a_login_only_rotation_sets() -> None:
    """Under alternating rotation `_b` has no generated password, so an
    epoch for it would change nothing: refused, naming what to do instead."""
    raw = read_raw_config(ROOT, "prod")
    credentials = {**raw["credentials"], "epochs": {"naap_app_b": 1}}
    with pytest.raises(ConfigError) as caught:
        parse_settings("prod", {**raw, "credentials": credentials})
    assert caught.value.key == "naap-db:credentials.epochs.naap_app_b"
    assert "rotation" in caught.value.message


@pytest.mark.parametrize(
    ("credentials", "key"),
    [
        ({"epochs": {"naap_app": 1}}, "naap-db:credentials.epochs.naap_app"),
        ({"epochs": {"naap_app_a": 1}}, "naap-db:credentials.epochs.naap_app_a"),
        ({"epoch": 2}, "naap-db:credentials.epoch"),
    ],
)
def test_epochs_that_do_nothing_under_alternating_rotation(
    credentials: dict[str, Any], key: str
) -> None:
    """Pulumi ignores the alternating logins' password changes (the rotation
    owns them): an epoch would change only the stack output, so prod refuses
    it and names the rotation to run instead."""
    raw = read_raw_config(ROOT, "prod")
    with pytest.raises(ConfigError) as caught:
        parse_settings("prod", {**raw, "credentials": {**raw["credentials"], **credentials}})
    assert caught.value.key == key
    assert "does nothing under alternating rotation" in caught.value.message
    assert "rotate" in caught.value.message


def test_epoch_not_an_integer() -> None:
    error = refused(dev_raw(credentials={"epochs": {"naap_app": "soon"}}))
    assert error.key == "naap-db:credentials.epochs.naap_app"


def test_unknown_push_mode() -> None:
    assert refused(dev_raw(push={"mode": "yolo"})).key == "naap-db:push.mode"


def test_prisma_mode_needs_a_directory() -> None:
    assert refused(dev_raw(push={"mode": "prisma"})).key == "naap-db:push.prismaDir"


def test_values_set_without_path_arrive_as_strings() -> None:
    settings = parse_settings("dev", dev_raw(production="false", credentials={"epoch": "3"}))
    assert settings.production is False and settings.credentials.epoch == 3


def copy_project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, change: Any) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))


def push_line(stack_file: Path) -> int:
    """The line of the stack file's `naap-db:push` key, counted from 1."""
    lines = stack_file.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith("  naap-db:push:"))


def run_plan(project: Path, stack: str = "dev") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "naapdb", "plan", "--stack", stack, "--project", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


BAD_PROJECTS = {
    "duplicate schema": (
        lambda d: d["config"]["naap-db:plugins"]["value"].append(
            {"plugin": "copy", "schema": "plugin_wallet"}
        ),
        "naap-db:plugins[8].schema",
    ),
    "upper-case schema": (
        lambda d: d["config"]["naap-db:plugins"]["value"][2].update(schema="Plugin_Wallet"),
        "naap-db:plugins[2].schema",
    ),
    "reads unknown": (
        lambda d: d["config"]["naap-db:plugins"]["value"][3].update(reads=["plugin_ghost"]),
        "naap-db:plugins[3].reads[0]",
    ),
    "empty catalogue": (
        lambda d: d["config"]["naap-db:plugins"].update(value=[]),
        "naap-db:plugins",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PROJECTS))
def test_bad_catalogue_on_the_command_line(tmp_path: Path, case: str) -> None:
    change, key = BAD_PROJECTS[case]
    project = copy_project(tmp_path)
    edit(project / "Pulumi.yaml", change)
    result = run_plan(project)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {key}:"), result.stderr


def test_bad_stack_file_on_the_command_line(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    edit(
        project / "Pulumi.dev.yaml",
        lambda d: d["config"].update({"naap-db:adminPassword": "hunter2plain"}),
    )
    result = run_plan(project)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: naap-db:adminPassword:")
    assert "hunter2plain" not in result.stderr


def test_missing_stack_file(tmp_path: Path) -> None:
    result = run_plan(copy_project(tmp_path), stack="staging")
    assert result.returncode == 2 and "Pulumi.staging.yaml" in result.stderr


def test_a_key_set_twice_in_a_stack_file_is_refused(tmp_path: Path) -> None:
    """PyYAML would keep the second value without a word; the Pulumi CLI
    refuses the file, so `plan` must not judge a config `pulumi up` never runs."""
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    first = push_line(stack_file)
    stack_file.write_text(stack_file.read_text() + "  naap-db:push:\n    mode: off\n")
    result = run_plan(project)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"error: {stack_file}: key 'naap-db:push' is set twice (lines {first} and "
    )
    assert lines[0].endswith("; keep one")


def test_yaml_merge_keys_are_not_a_repeated_key(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    text = stack_file.read_text().replace(
        "  naap-db:push:\n    mode: sql\n", "  naap-db:push:\n    <<: {mode: sql}\n"
    )
    stack_file.write_text(text)
    result = run_plan(project)
    assert result.returncode == 0, result.stderr


def test_a_key_set_twice_on_one_line_is_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    text = stack_file.read_text().replace(
        "  naap-db:push:\n    mode: sql\n    source: migrations\n",
        "  naap-db:push: {mode: sql, source: migrations, mode: off}\n",
    )
    stack_file.write_text(text)
    line = push_line(stack_file)
    result = run_plan(project)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (
        f"error: {stack_file}: key 'naap-db:push.mode' is set twice (on line {line}); keep one"
    )


def test_a_key_set_twice_in_a_catalogue_entry_is_named_as_pulumi_names_it(
    tmp_path: Path,
) -> None:
    """Pulumi.yaml wraps the catalogue in `value:`; the message names the key
    the way `pulumi config set --path` would: naap-db:plugins[1].reads."""
    project = copy_project(tmp_path)
    pulumi_yaml = project / "Pulumi.yaml"
    text = pulumi_yaml.read_text().replace(
        "        schema: plugin_community\n        reads: [public]\n",
        "        schema: plugin_community\n        reads: [public]\n        reads: []\n",
    )
    assert text != pulumi_yaml.read_text()
    pulumi_yaml.write_text(text)
    result = run_plan(project)
    assert result.returncode == 2 and result.stdout == ""
    assert "key 'naap-db:plugins[1].reads' is set twice (lines " in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_port_that_is_not_a_number_says_how_to_write_one() -> None:
    """Trap: `port: "54x32"` used to give "is not a int" and no fix."""
    error = refused(dev_raw(server={"kind": "container", "port": "54x32"}))
    assert str(error) == (
        "naap-db:server.port: '54x32' is not a whole number; write digits only, e.g. 5432"
    )
    error = refused(dev_raw(production="yes"))
    assert str(error) == (
        "naap-db:production: 'yes' is not true or false; write true or false, unquoted"
    )


@pytest.mark.parametrize(
    ("edit_text", "message"),
    [
        # Trap: the CLI drops a misspelt `config:` and the stack silently
        # falls back to every default (kind: container).
        (
            lambda text: text.replace("\nconfig:\n", "\nconfg:\n"),
            "confg: unknown top-level key, which Pulumi would ignore; did you mean config? a "
            "stack file holds config, environment, secretsprovider, encryptedkey, encryptionsalt",
        ),
        # Trap: `naapdb:limits:` is handed to no program, so every limit
        # stays at its default and `plan` exits 0.
        (
            lambda text: text.replace("  naap-db:limits:", "  naapdb:limits:"),
            "naapdb:limits: 'naapdb' is not this project's namespace, so Pulumi would hand the "
            "key to nobody; write naap-db:limits",
        ),
        (
            lambda text: text.replace("  naap-db:push:", "  naap_db:push:"),
            "naap_db:push: 'naap_db' is not this project's namespace, so Pulumi would hand the "
            "key to nobody; write naap-db:push",
        ),
    ],
)
def test_what_pulumi_would_ignore_in_a_stack_file_is_refused_in_one_line(
    tmp_path: Path, edit_text: Any, message: str
) -> None:
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(edit_text(stack_file.read_text()))
    result = run_plan(project)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: {stack_file}: {message}\n"


def test_other_namespaces_are_left_to_their_programs(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(
        stack_file.read_text() + "  aws:region: us-east-1\n  docker:host: unix:///x\n"
    )
    assert run_plan(project).returncode == 0


def test_a_near_miss_namespace_in_pulumi_yaml_is_refused(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    pulumi_yaml = project / "Pulumi.yaml"
    pulumi_yaml.write_text(
        pulumi_yaml.read_text().replace("  naap-db:plugins:", "  NAAP-DB:plugins:")
    )
    result = run_plan(project)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {pulumi_yaml}: NAAP-DB:plugins: 'NAAP-DB' is not")

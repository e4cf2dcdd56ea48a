"""`naap-db:server` parsing: defaults of each kind, and every bad input of
the server issue refused with one message naming the key, through
`parse_settings`, `load_stack_settings` and `python -m naapdb plan`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb.__main__ import main
from naapdb.errors import ConfigError
from naapdb.settings import (
    SECRET,
    ContainerServer,
    ExternalServer,
    RdsServer,
    StackSettings,
    parse_settings,
)
from naapdb.stackfiles import load_stack_settings, read_raw_config

ROOT = Path(__file__).resolve().parents[2]

RDS = {
    "kind": "rds",
    "vpcId": "vpc-0abc",
    "subnetIds": ["subnet-0a", "subnet-0b"],
    "allowedCidrs": ["10.0.0.0/16"],
}
EXTERNAL = {"kind": "external", "host": "db.example.com"}
# prod's connection budget needs its instance class.
PROD_RDS = {**RDS, "instanceClass": "db.m7g.large"}


def raw_config(stack: str = "dev", **overrides: Any) -> dict[str, Any]:
    """The committed stack's config with `naap-db:` keys replaced (None removes)."""
    raw = read_raw_config(ROOT, stack)
    for key, value in overrides.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def settings_of(stack: str = "dev", **overrides: Any) -> StackSettings:
    return parse_settings(stack, raw_config(stack, **overrides))


# (case id, stack whose config is the base, overrides, the key the message must name)
BAD_INPUTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("unknown-kind", "dev", {"server": {"kind": "kubernetes"}}, "naap-db:server.kind"),
    ("no-kind", "dev", {"server": {"image": "postgres:16"}}, "naap-db:server.kind"),
    ("server-not-mapping", "dev", {"server": "container"}, "naap-db:server"),
    (
        "unknown-option",
        "dev",
        {"server": {"kind": "container", "imgae": "x"}},
        "naap-db:server.imgae",
    ),
    (
        "rds-without-subnets",
        "prod",
        {"server": {k: v for k, v in RDS.items() if k != "subnetIds"}},
        "naap-db:server.subnetIds",
    ),
    (
        "rds-without-vpc",
        "prod",
        {"server": {k: v for k, v in RDS.items() if k != "vpcId"}},
        "naap-db:server.vpcId",
    ),
    (
        "rds-one-subnet",
        "prod",
        {"server": {**RDS, "subnetIds": ["subnet-0a"]}},
        "naap-db:server.subnetIds",
    ),
    (
        "rds-without-allowed-networks",
        "prod",
        {"server": {k: v for k, v in RDS.items() if k != "allowedCidrs"}},
        "naap-db:server.allowedCidrs",
    ),
    ("external-without-host", "dev", {"server": {"kind": "external"}}, "naap-db:server.host"),
    (
        "external-without-password",
        "dev",
        {"server": EXTERNAL, "adminPassword": None},
        "naap-db:adminPassword",
    ),
    (
        "container-port-0",
        "dev",
        {"server": {"kind": "container", "port": 0}},
        "naap-db:server.port",
    ),
    (
        "container-port-65536",
        "dev",
        {"server": {"kind": "container", "port": 65536}},
        "naap-db:server.port",
    ),
    (
        "external-port-70000",
        "dev",
        {"server": {**EXTERNAL, "port": 70000}, "adminPassword": SECRET},
        "naap-db:server.port",
    ),
    (
        "port-not-a-number",
        "dev",
        {"server": {"kind": "container", "port": "x"}},
        "naap-db:server.port",
    ),
    (
        "image-untagged",
        "dev",
        {"server": {"kind": "container", "image": "postgres"}},
        "naap-db:server.image",
    ),
    (
        "image-latest",
        "dev",
        {"server": {"kind": "container", "image": "postgres:latest"}},
        "naap-db:server.image",
    ),
    (
        "image-floating-name",
        "dev",
        {"server": {"kind": "container", "image": "postgres:alpine"}},
        "naap-db:server.image",
    ),
    (
        "image-registry-port-no-tag",
        "dev",
        {"server": {"kind": "container", "image": "registry.local:5000/postgres"}},
        "naap-db:server.image",
    ),
    (
        "plaintext-admin-password",
        "dev",
        {"server": EXTERNAL, "adminPassword": "hunter2"},
        "naap-db:adminPassword",
    ),
    (
        "password-in-server-object",
        "dev",
        {"server": {**EXTERNAL, "password": "hunter2"}, "adminPassword": SECRET},
        "naap-db:server.password",
    ),
    (
        "secure-password-in-server-object",
        "dev",
        {"server": {**EXTERNAL, "adminPassword": SECRET}},
        "naap-db:server.adminPassword",
    ),
    (
        "admin-password-for-container",
        "dev",
        {"adminPassword": SECRET},
        "naap-db:adminPassword",
    ),
    ("admin-password-for-rds", "prod", {"adminPassword": SECRET}, "naap-db:adminPassword"),
    (
        "prod-publicly-accessible",
        "prod",
        {"server": {**RDS, "publiclyAccessible": True}},
        "naap-db:server.publiclyAccessible",
    ),
    (
        "prod-open-ipv4",
        "prod",
        {"server": {**RDS, "allowedCidrs": ["10.0.0.0/16", "0.0.0.0/0"]}},
        "naap-db:server.allowedCidrs[1]",
    ),
    (
        "prod-open-ipv6",
        "prod",
        {"server": {**RDS, "allowedCidrs": ["::/0"]}},
        "naap-db:server.allowedCidrs[0]",
    ),
    (
        "prod-container-wide-bind",
        "prod",
        {"server": {"kind": "container", "bindAddress": "0.0.0.0"}, "credentials": None},
        "naap-db:server.bindAddress",
    ),
    (
        "prod-skip-final-snapshot",
        "prod",
        {"server": {**RDS, "skipFinalSnapshot": True}},
        "naap-db:server.skipFinalSnapshot",
    ),
    (
        "prod-no-deletion-protection",
        "prod",
        {"server": {**RDS, "deletionProtection": False}},
        "naap-db:server.deletionProtection",
    ),
    (
        "backup-retention-under-7",
        "prod",
        {"server": {**RDS, "backupRetentionDays": 3}},
        "naap-db:server.backupRetentionDays",
    ),
    (
        "bad-cidr",
        "prod",
        {"server": {**RDS, "allowedCidrs": ["10.0.0/99"]}},
        "naap-db:server.allowedCidrs[0]",
    ),
    ("bad-vpc-id", "prod", {"server": {**RDS, "vpcId": "10.0.0.0/16"}}, "naap-db:server.vpcId"),
    (
        "bad-security-group-id",
        "prod",
        {"server": {**RDS, "allowedSecurityGroupIds": ["default"]}},
        "naap-db:server.allowedSecurityGroupIds[0]",
    ),
    (
        "bad-engine-version",
        "prod",
        {"server": {**RDS, "engineVersion": "latest"}},
        "naap-db:server.engineVersion",
    ),
    (
        "storage-ceiling-below-storage",
        "prod",
        {"server": {**RDS, "allocatedStorage": 100, "maxAllocatedStorage": 50}},
        "naap-db:server.maxAllocatedStorage",
    ),
    (
        "rds-reserved-admin",
        "prod",
        {"server": {**RDS, "adminUser": "rdsadmin"}},
        "naap-db:server.adminUser",
    ),
    (
        "admin-is-a-plan-role",
        "dev",
        {"server": {"kind": "container", "adminUser": "naap_app"}},
        "naap-db:server.adminUser",
    ),
    (
        "admin-not-an-identifier",
        "dev",
        {"server": {"kind": "container", "adminUser": "Robert'); DROP"}},
        "naap-db:server.adminUser",
    ),
    (
        "external-bad-sslmode",
        "dev",
        {"server": {**EXTERNAL, "sslmode": "on"}, "adminPassword": SECRET},
        "naap-db:server.sslmode",
    ),
    (
        "external-other-database",
        "dev",
        {"server": {**EXTERNAL, "database": "postgres"}, "adminPassword": SECRET},
        "naap-db:server.database",
    ),
    (
        "epoch-of-rds-master",
        "prod",
        {"credentials": {"epochs": {"naap_admin": 1}}},
        "naap-db:credentials.epochs.naap_admin",
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_server_input_names_the_key(stack: str, overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of(stack, **overrides)
    assert caught.value.key == key
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_server_input_from_stack_files(
    tmp_path: Path, stack: str, overrides: dict[str, Any], key: str
) -> None:
    project = write_project(tmp_path, "broken", raw_config(stack, **overrides))
    with pytest.raises(ConfigError) as caught:
        load_stack_settings("broken", project)
    assert caught.value.key == key


def test_bad_server_input_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for case_id, stack, overrides, key in BAD_INPUTS:
        project = write_project(tmp_path / case_id, "broken", raw_config(stack, **overrides))
        code = main(["plan", "--stack", "broken", "--project", str(project)])
        captured = capsys.readouterr()
        assert code == 2, case_id
        assert captured.out == "", case_id
        assert captured.err.startswith(f"error: {key}: "), (case_id, captured.err)
        assert captured.err.count("\n") == 1, (case_id, captured.err)


def test_the_real_command_exits_2_with_one_line(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, "broken", raw_config("dev", server={"kind": "container", "image": "postgres"})
    )
    result = subprocess.run(
        [sys.executable, "-m", "naapdb", "plan", "--stack", "broken", "--project", str(project)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: naap-db:server.image: 'postgres' has no pinned tag; name a major version, "
        "e.g. postgres:16"
    ]


def write_project(directory: Path, stack: str, raw: dict[str, Any]) -> Path:
    """A project dir with the real Pulumi.yaml (minus its config) and a stack
    file holding `raw` (SECRET values written as `secure:`)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    project = yaml.safe_load((directory / "Pulumi.yaml").read_text())
    project.pop("config", None)
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    config = {f"naap-db:{key}": _encrypted(value) for key, value in raw.items()}
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))
    return directory


def _encrypted(value: Any) -> Any:
    if value is SECRET:
        return {"secure": "AAABAAAA"}
    if isinstance(value, dict):
        return {key: _encrypted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_encrypted(item) for item in value]
    return value


# What is accepted, and the defaults a user would expect.


def test_committed_dev_stack_is_a_loopback_container() -> None:
    server = load_stack_settings("dev", ROOT).server
    assert server == ContainerServer()
    assert server.image == "postgres:16"
    assert server.bind_address == "127.0.0.1"
    assert server.connect_host == "127.0.0.1"
    assert server.keep_data_on_destroy is True


def test_committed_prod_stack_is_a_private_protected_rds_instance() -> None:
    settings = load_stack_settings("prod", ROOT)
    server = settings.server
    assert settings.production is True
    assert isinstance(server, RdsServer)
    assert server.engine_version == "16"
    assert server.parameter_group_family == "postgres16"
    assert server.multi_az is True
    assert server.publicly_accessible is False
    assert server.deletion_protection is True
    assert server.skip_final_snapshot is False
    assert server.backup_retention_days >= 7
    assert server.max_allocated_storage >= server.allocated_storage


def test_no_server_key_means_a_container() -> None:
    assert settings_of("dev", server=None).server == ContainerServer()


def test_production_gates_are_production_only() -> None:
    """A non-production rds stack may open itself up; the refusal above comes
    from `naap-db:production`, not from the values alone."""
    server = settings_of(
        "dev",
        server={**RDS, "publiclyAccessible": True, "allowedCidrs": ["0.0.0.0/0"]},
    ).server
    assert isinstance(server, RdsServer)
    assert server.publicly_accessible is True
    wide = settings_of("dev", server={"kind": "container", "bindAddress": "0.0.0.0"}).server
    assert isinstance(wide, ContainerServer)
    assert wide.connect_host == "127.0.0.1"


def test_config_set_strings_are_taken() -> None:
    """`pulumi config set` without --path stores scalars as strings."""
    server = settings_of(
        "dev", server={"kind": "container", "port": "15432", "keepDataOnDestroy": "false"}
    ).server
    assert server == ContainerServer(port=15432, keep_data_on_destroy=False)


def test_pinned_images_are_accepted() -> None:
    for image in (
        "postgres:16",
        "postgres:16.4-bookworm",
        "postgis/postgis:16-3.4",
        "registry.local:5000/pg:16",
    ):
        server = settings_of("dev", server={"kind": "container", "image": image}).server
        assert isinstance(server, ContainerServer)
        assert server.image == image


def test_external_server_with_a_secret_password() -> None:
    settings = settings_of(
        "dev",
        server={**EXTERNAL, "port": 6432, "sslmode": "verify-full", "adminUser": "dba"},
        adminPassword=SECRET,
    )
    assert settings.server == ExternalServer(
        host="db.example.com", port=6432, admin_user="dba", sslmode="verify-full"
    )
    assert settings.has_admin_password


def test_container_admin_epoch_is_accepted() -> None:
    settings = settings_of("dev", credentials={"epochs": {"postgres": 2}})
    assert settings.credentials.epoch_of("postgres") == 2


def test_rds_engine_major_picks_the_parameter_family() -> None:
    # prod's limits need the connections of its own instance class (the budget)
    server = settings_of(
        "prod", server={**RDS, "engineVersion": "15.7", "instanceClass": "db.m7g.large"}
    ).server
    assert isinstance(server, RdsServer)
    assert server.major == 15
    assert server.parameter_group_family == "postgres15"


@pytest.mark.parametrize(("stored", "expected"), [(16, "16"), ("16", "16"), ("16.4", "16.4")])
def test_engine_version_set_as_a_number(stored: Any, expected: str) -> None:
    """`pulumi config set --path 'naap-db:server.engineVersion' 16` stores the
    number 16: it means the major "16", not an error."""
    prod = raw_config("prod")
    settings = settings_of("prod", server={**prod["server"], "engineVersion": stored})
    assert isinstance(settings.server, RdsServer)
    assert settings.server.engine_version == expected


def test_engine_version_as_a_float_is_refused_with_the_quoting() -> None:
    """16.10 read as a number is 16.1: refused, saying to quote it."""
    prod = raw_config("prod")
    with pytest.raises(ConfigError) as caught:
        settings_of("prod", server={**prod["server"], "engineVersion": 16.1})
    assert caught.value.key == "naap-db:server.engineVersion"
    assert "quote it" in caught.value.message


@pytest.mark.parametrize(
    "cidr",
    [
        "0.0.0.0/1",
        "128.0.0.0/1",
        "8.8.8.0/24",
        "172.0.0.0/8",
        "10.0.0.0/7",
        "::/1",
        "2001:db8::/32",
    ],
)
def test_production_admits_only_networks_inside_the_private_ranges(cidr: str) -> None:
    """Issue 21: not only `0.0.0.0/0`: half the internet (`0.0.0.0/1`), a
    public block or anything broader than a private range is refused."""
    with pytest.raises(ConfigError) as caught:
        settings_of("prod", server={**PROD_RDS, "allowedCidrs": ["10.0.0.0/16", cidr]})
    message = str(caught.value)
    assert message.startswith(f"naap-db:server.allowedCidrs[1]: {cidr} reaches beyond the private")
    assert "\n" not in message


def test_production_takes_the_private_ranges_and_their_subnets() -> None:
    cidrs = ["10.0.0.0/8", "172.16.0.0/12", "192.168.10.0/24", "fd00:10::/64"]
    server = settings_of("prod", server={**PROD_RDS, "allowedCidrs": cidrs}).server
    assert isinstance(server, RdsServer) and server.allowed_cidrs == tuple(cidrs)

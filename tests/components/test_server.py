"""`DatabaseServer` under the mocks harness: the dev container, the prod RDS
instance, an external server, and bad config refused before any resource.

Most tests run the server component alone (`run_server`, the same engine,
config and recording as `run_stack` but a program that builds only the
server and exports its attributes), so they test this component and nothing
else; the tests at the end run the whole `__main__.py` (`run_stack`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest

from naapdb import scram, tlsprobe
from tests import harness
from tests.harness import FAKE_SECRET, Resource, Run

PROVIDER = "pulumi:providers:postgresql"
IMAGE = "docker:index/remoteImage:RemoteImage"
VOLUME = "docker:index/volume:Volume"
CONTAINER = "docker:index/container:Container"
COMMAND = "command:local:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"
INSTANCE = "aws:rds/instance:Instance"
PARAMETERS = "aws:rds/parameterGroup:ParameterGroup"
SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
GET_SECRET = "aws:secretsmanager/getSecretVersion:getSecretVersion"
MASTER_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1"

EXTERNAL = {
    "naap-db:server": {
        "kind": "external",
        "host": "db.example.com",
        "port": 6432,
        "sslmode": "verify-full",
        "adminUser": "dba",
    },
    "naap-db:adminPassword": {"secure": "v1:encrypted"},
}


def run_server(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    call_handlers: Mapping[str, harness.CallHandler] | None = None,
    *,
    preview: bool = False,
    raise_errors: bool = True,
) -> Run:
    """Build only `DatabaseServer` for `stack` under the harness's mocks and
    export its attributes as stack outputs."""
    from components.server import DatabaseServer
    from components.settings import load_settings

    def program() -> None:
        server = DatabaseServer("naap-server", load_settings())
        for name in ("host", "port", "database", "admin_username", "admin_password", "identity"):
            pulumi.export(name, getattr(server, name))
        pulumi.export("sslmode", server.sslmode)
        pulumi.export("superuser", server.superuser)
        pulumi.export("provider_urn", server.provider.urn)
        if server.master_secret_arn is not None:
            pulumi.export("master_secret_arn", server.master_secret_arn)
            pulumi.export("vpc_id", server.vpc_id)
            pulumi.export("subnet_ids", list(server.subnet_ids))
            pulumi.export("security_group_id", server.security_group_id)
            pulumi.export("client_security_group_id", server.client_security_group_id)

    return harness.run_program(
        stack,
        overrides,
        call_handlers=call_handlers,
        program=program,
        preview=preview,
        raise_errors=raise_errors,
    )


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_server("dev")


@pytest.fixture(scope="module")
def prod() -> Run:
    return run_server("prod")


def leaf_paths(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, leaf) pairs in the harness's path format (`a.b[0].c`)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, f"{path}[{index}]")
    else:
        yield path, value


def under_secret(resource: Resource, path: str) -> bool:
    return any(
        path == secret or path.startswith(secret + ".") or path.startswith(secret + "[")
        for secret in resource.secret_paths
    )


def plaintext_leaks(run: Run, value: str) -> list[str]:
    """Every input of every resource that carries `value` outside a secret."""
    return [
        f"{resource.name}:{path}"
        for resource in run.resources
        for path, leaf in leaf_paths(resource.inputs)
        if isinstance(leaf, str) and value in leaf and not under_secret(resource, path)
    ]


def envs_of(container: Resource) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.inputs["envs"])


def labels_of(resource: Resource) -> dict[str, str]:
    return {label["label"]: label["value"] for label in resource.inputs["labels"]}


# dev: a container


def test_dev_pulls_a_pinned_image_and_keeps_it(dev: Run) -> None:
    image = dev.one(IMAGE)
    assert image.inputs["name"] == "postgres:16"
    assert image.inputs["keepLocally"] is True


def test_dev_data_volume_is_retained_and_named_from_the_stack(dev: Run) -> None:
    volume = dev.one(VOLUME)
    assert volume.inputs["name"] == "naap-db-dev-data"
    assert volume.retain_on_delete is True
    assert labels_of(volume)["naap-db.stack"] == "dev"


def test_dev_volume_is_deleted_when_the_user_opts_out() -> None:
    run = run_server("dev", {"naap-db:server": {"kind": "container", "keepDataOnDestroy": False}})
    assert run.one(VOLUME).retain_on_delete is False


def test_dev_container(dev: Run) -> None:
    container = dev.one(CONTAINER)
    volume = dev.one(VOLUME)
    image = dev.one(IMAGE)
    assert container.inputs["name"] == "naap-db-dev"
    assert container.inputs["image"] == image.state["imageId"]
    assert container.inputs["volumes"] == [
        {"volumeName": volume.inputs["name"], "containerPath": "/var/lib/postgresql/data"}
    ]
    assert container.inputs["ports"] == [
        {"internal": 5432, "external": 5432, "ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert container.inputs["restart"] == "unless-stopped"
    assert container.inputs["wait"] is True
    assert container.inputs["waitTimeout"] == 120
    assert labels_of(container) == {"naap-db.project": "naap-db", "naap-db.stack": "dev"}
    # One data directory: the old container goes before its replacement starts.
    assert container.delete_before_replace is True


def test_dev_container_env(dev: Run) -> None:
    container = dev.one(CONTAINER)
    admin_password = dev.one(PASSWORD, "admin").state["result"]
    assert envs_of(container) == {
        "POSTGRES_DB": "naap",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": admin_password,
        "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256",
    }
    assert container.is_secret("envs")
    assert under_secret(container, "envs[2]")
    assert "envs" in container.additional_secret_outputs


def test_dev_healthcheck_is_pg_isready_over_tcp(dev: Run) -> None:
    healthcheck = dev.one(CONTAINER).inputs["healthcheck"]
    tests = healthcheck["tests"]
    assert tests[:2] == ["CMD", "pg_isready"]
    # TCP, not the socket: the image's init-time server listens on the socket only.
    assert tests[tests.index("-h") + 1] == "127.0.0.1"
    assert tests[tests.index("-d") + 1] == "naap"
    assert tests[tests.index("-U") + 1] == "postgres"
    assert healthcheck["retries"] > 0


def test_dev_admin_password_is_generated_with_epochs_in_keepers() -> None:
    run = run_server("dev", {"naap-db:credentials": {"epoch": 2, "epochs": {"postgres": 5}}})
    password = run.one(PASSWORD, "admin")
    assert password.inputs["keepers"] == {"role": "postgres", "epoch": "2", "role_epoch": "5"}
    assert password.inputs["special"] is False
    assert password.inputs["length"] >= 32


def test_dev_provider_waits_for_the_container(dev: Run) -> None:
    provider = dev.one(PROVIDER)
    container = dev.one(CONTAINER)
    sync = dev.one(COMMAND, "admin-password-sync")
    assert container.urn in provider.dependencies
    assert sync.urn in provider.dependencies
    assert provider.inputs["host"] == "127.0.0.1"
    assert provider.inputs["port"] == "5432"
    assert provider.inputs["database"] == "naap"
    assert provider.inputs["username"] == "postgres"
    # Explicit, so PGSSLMODE in the user's environment cannot change it.
    assert provider.inputs["sslmode"] == "disable"
    assert provider.inputs["superuser"] == "true"
    assert provider.inputs["password"] == dev.one(PASSWORD, "admin").state["result"]
    assert provider.is_secret("password")


def test_dev_password_sync_keeps_the_password_out_of_argv(dev: Run) -> None:
    """After an epoch bump the retained data directory still has the old
    password; the sync sets the new one, passing it by environment only."""
    sync = dev.one(COMMAND, "admin-password-sync")
    password = dev.one(PASSWORD, "admin").state["result"]
    assert sync.inputs["create"].startswith("docker exec -i -e NAAP_ADMIN_PASSWORD naap-db-dev ")
    assert "-U postgres" in sync.inputs["create"]
    assert password not in sync.inputs["create"]
    assert password not in sync.inputs["stdin"]
    assert "ALTER ROLE CURRENT_USER PASSWORD :'admin_password'" in sync.inputs["stdin"]
    # Its SCRAM verifier: the ALTER ROLE never carries the password.
    assert sync.inputs["environment"] == {
        "NAAP_ADMIN_PASSWORD": scram.verifier(password, "postgres")
    }
    assert password not in str(sync.inputs["environment"])
    assert sync.is_secret("environment")
    assert dev.one(CONTAINER).urn in sync.dependencies
    assert password in sync.inputs["triggers"]


def test_dev_outputs(dev: Run) -> None:
    assert dev.outputs["host"] == "127.0.0.1"
    assert dev.outputs["port"] == 5432
    assert dev.outputs["database"] == "naap"
    assert dev.outputs["admin_username"] == "postgres"
    assert dev.outputs["sslmode"] == "disable"
    assert dev.outputs["superuser"] is True
    assert dev.outputs["identity"] == dev.one(CONTAINER).id
    assert dev.outputs["admin_password"] == dev.one(PASSWORD, "admin").state["result"]
    assert "admin_password" in dev.secret_outputs
    assert "host" not in dev.secret_outputs


def test_dev_admin_password_is_never_plaintext(dev: Run) -> None:
    password = dev.one(PASSWORD, "admin").state["result"]
    assert plaintext_leaks(dev, password) == []


def test_dev_port_bind_address_and_name_from_config() -> None:
    run = run_server(
        "dev",
        {
            "naap-db:server": {
                "kind": "container",
                "port": 15432,
                "bindAddress": "0.0.0.0",
                "containerName": "my-pg",
                "waitTimeout": 300,
                "image": "postgres:16.4-bookworm",
            }
        },
    )
    container = run.one(CONTAINER)
    assert container.inputs["name"] == "my-pg"
    assert container.inputs["ports"][0]["internal"] == 5432
    assert container.inputs["ports"][0]["external"] == 15432
    assert container.inputs["ports"][0]["ip"] == "0.0.0.0"
    assert container.inputs["waitTimeout"] == 300
    assert run.one(IMAGE).inputs["name"] == "postgres:16.4-bookworm"
    assert " my-pg " in run.one(COMMAND, "admin-password-sync").inputs["create"]
    provider = run.one(PROVIDER)
    assert provider.inputs["port"] == "15432"
    assert provider.inputs["host"] == "127.0.0.1"  # a wildcard bind is reached on loopback


def test_dev_creates_no_cloud_resources(dev: Run) -> None:
    assert not [r.type for r in dev.resources if r.type.startswith("aws:")]


# prod: RDS


def test_prod_instance_settings(prod: Run) -> None:
    instance = prod.one(INSTANCE)
    inputs = instance.inputs
    expected = {
        "identifier": "naap-db-prod",
        "engine": "postgres",
        "engineVersion": "16",
        "instanceClass": "db.m7g.large",
        "allocatedStorage": 50,
        "maxAllocatedStorage": 500,
        "storageEncrypted": True,
        "deletionProtection": True,
        "backupRetentionPeriod": 14,
        "multiAz": True,
        "publiclyAccessible": False,
        "manageMasterUserPassword": True,
        "skipFinalSnapshot": False,
        # A suffix per instance identity (the mock's RandomId hex).
        "finalSnapshotIdentifier": "naap-db-prod-final-0a1b2c3d",
        "performanceInsightsEnabled": True,
        "autoMinorVersionUpgrade": True,
        "allowMajorVersionUpgrade": False,
        "copyTagsToSnapshot": True,
        "dbName": "naap",
        "username": "naap_admin",
        "port": 5432,
    }
    assert {key: inputs.get(key) for key in expected} == expected
    # RDS keeps the master password; nothing about it is declared here.
    assert "password" not in inputs
    assert "passwordWo" not in inputs
    assert inputs["tags"]["Stack"] == "prod"


def test_prod_instance_is_protected(prod: Run) -> None:
    assert prod.one(INSTANCE).protect is True


def test_prod_every_server_resource_is_protected(prod: Run) -> None:
    for type_ in (INSTANCE, PARAMETERS, SUBNETS, EGRESS_RULE):
        assert prod.one(type_).protect is True, type_
    assert all(group.protect for group in prod.of_type(SECURITY_GROUP))


def test_prod_instance_uses_its_groups(prod: Run) -> None:
    inputs = prod.one(INSTANCE).inputs
    assert inputs["parameterGroupName"] == prod.one(PARAMETERS).state["name"]
    assert inputs["dbSubnetGroupName"] == prod.one(SUBNETS).state["name"]
    assert inputs["vpcSecurityGroupIds"] == [prod.one(SECURITY_GROUP, "-sg").id]


def test_prod_kms_key_from_config() -> None:
    run = run_server(
        "prod",
        {
            "naap-db:server": {
                **prod_server_config(),
                "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/abc",
            }
        },
    )
    assert run.one(INSTANCE).inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/abc"


def test_prod_parameter_group_forces_tls_scram_and_logs_ddl_and_connections(prod: Run) -> None:
    group = prod.one(PARAMETERS)
    assert group.inputs["family"] == "postgres16"
    assert {p["name"]: p["value"] for p in group.inputs["parameters"]} == {
        "rds.force_ssl": "1",
        "password_encryption": "scram-sha-256",
        "log_statement": "ddl",
        # who still uses the previous login before the next rotation
        "log_connections": "1",
        "log_disconnections": "1",
        # The connection budget's ceiling, exactly: RDS's formula on
        # db.m7g.large's 8 GiB (naapdb.limits), applied at the next reboot.
        "max_connections": "901",
    }
    static = [p for p in group.inputs["parameters"] if p["name"] == "max_connections"]
    assert static[0]["applyMethod"] == "pending-reboot"


def test_prod_parameter_family_follows_the_major() -> None:
    run = run_server("prod", {"naap-db:server": {**prod_server_config(), "engineVersion": "15"}})
    assert run.one(PARAMETERS).inputs["family"] == "postgres15"
    assert run.one(INSTANCE).inputs["engineVersion"] == "15"


def test_prod_subnet_group(prod: Run) -> None:
    assert prod.one(SUBNETS).inputs["subnetIds"] == [
        "subnet-0123456789abcdef0",
        "subnet-0123456789abcdef1",
    ]


def test_prod_security_group_admits_5432_from_allowed_networks_only(prod: Run) -> None:
    group = prod.one(SECURITY_GROUP, "-sg")
    clients = prod.one(SECURITY_GROUP, "-clients")
    assert group.inputs["vpcId"] == "vpc-0123456789abcdef0"
    ingress = group.inputs["ingress"]
    assert all(rule["protocol"] == "tcp" for rule in ingress)
    assert all(rule["fromPort"] == rule["toPort"] == 5432 for rule in ingress)
    cidrs = [cidr for rule in ingress for cidr in rule.get("cidrBlocks", [])]
    cidrs += [cidr for rule in ingress for cidr in rule.get("ipv6CidrBlocks", [])]
    groups = [sg for rule in ingress for sg in rule.get("securityGroups", [])]
    assert cidrs == ["10.0.0.0/16"]
    assert groups == [clients.id]
    assert "egress" not in group.inputs


def test_prod_allowed_security_groups_and_ipv6() -> None:
    run = run_server(
        "prod",
        {
            "naap-db:server": {
                **prod_server_config(),
                "allowedCidrs": ["10.1.0.0/16", "fd00::/8"],
                "allowedSecurityGroupIds": ["sg-0app"],
            }
        },
    )
    ingress = run.one(SECURITY_GROUP, "-sg").inputs["ingress"]
    clients = run.one(SECURITY_GROUP, "-clients")
    assert [rule.get("cidrBlocks") for rule in ingress if "cidrBlocks" in rule] == [["10.1.0.0/16"]]
    assert [rule.get("ipv6CidrBlocks") for rule in ingress if "ipv6CidrBlocks" in rule] == [
        ["fd00::/8"]
    ]
    assert [rule["securityGroups"] for rule in ingress if "securityGroups" in rule] == [
        ["sg-0app", clients.id]
    ]


def test_prod_client_group_may_reach_the_database_only(prod: Run) -> None:
    rule = prod.one(EGRESS_RULE)
    assert rule.inputs["securityGroupId"] == prod.one(SECURITY_GROUP, "-clients").id
    assert rule.inputs["referencedSecurityGroupId"] == prod.one(SECURITY_GROUP, "-sg").id
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "tcp",
        5432,
        5432,
    )


def test_prod_provider_reads_the_master_password_from_the_managed_secret(prod: Run) -> None:
    lookups = [args for token, args in prod.calls if token == GET_SECRET]
    assert lookups == [{"secretId": MASTER_SECRET_ARN}]
    provider = prod.one(PROVIDER)
    assert provider.inputs["password"] == FAKE_SECRET  # the mock secret's JSON `password`
    assert provider.is_secret("password")
    assert provider.inputs["username"] == "naap_admin"
    assert provider.inputs["host"] == prod.one(INSTANCE).state["address"]
    assert provider.inputs["sslmode"] == "verify-full"
    assert Path(provider.inputs["sslrootcert"]).is_file()  # the stand-in bundle (conftest)
    assert provider.inputs["superuser"] == "false"
    assert prod.one(INSTANCE).urn in provider.dependencies


def test_prod_master_password_follows_the_secret() -> None:
    """The provider takes whatever the secret holds now (RDS rotates it)."""
    rotated = {
        GET_SECRET: lambda args: {
            **args,
            "secretString": json.dumps({"username": "naap_admin", "password": "rotated-by-rds"}),
        }
    }
    run = run_server("prod", call_handlers=rotated)
    assert run.one(PROVIDER).inputs["password"] == "rotated-by-rds"
    assert run.one(PROVIDER).is_secret("password")
    assert plaintext_leaks(run, "rotated-by-rds") == []


def test_prod_outputs_for_the_credentials_area(prod: Run) -> None:
    assert prod.outputs["master_secret_arn"] == MASTER_SECRET_ARN
    assert prod.outputs["identity"] == prod.one(INSTANCE).state["resourceId"]
    assert prod.outputs["vpc_id"] == "vpc-0123456789abcdef0"
    assert prod.outputs["subnet_ids"] == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    assert prod.outputs["security_group_id"] == prod.one(SECURITY_GROUP, "-sg").id
    assert prod.outputs["client_security_group_id"] == prod.one(SECURITY_GROUP, "-clients").id
    assert prod.outputs["sslmode"] == "verify-full"
    assert prod.outputs["superuser"] is False
    assert "admin_password" in prod.secret_outputs


def test_prod_creates_no_container(prod: Run) -> None:
    assert not [r.type for r in prod.resources if r.type.startswith("docker:")]
    # The only random resource of the server is the final snapshot's suffix.
    assert [
        r.type for r in prod.resources if r.type.startswith("random:") and "server" in r.urn
    ] == ["random:index/randomId:RandomId"]


# external


def tls_answer(monkeypatch: pytest.MonkeyPatch, offered: bool | None) -> list[tuple[str, int]]:
    """The server's answer to the TLS probe (naapdb/tlsprobe.py); returns the
    (host, port) pairs asked."""
    asked: list[tuple[str, int]] = []

    def offers_tls(host: str, port: int, timeout: float) -> bool | None:
        asked.append((host, port))
        return offered

    monkeypatch.setattr(tlsprobe, "offers_tls", offers_tls)
    return asked


def test_external_creates_nothing_and_connects_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = tls_answer(monkeypatch, True)
    run = run_server("dev", EXTERNAL)
    assert asked == [("db.example.com", 6432)]
    assert [r.type for r in run.resources if r.custom] == [PROVIDER]
    provider = run.one(PROVIDER)
    assert provider.inputs["host"] == "db.example.com"
    assert provider.inputs["port"] == "6432"
    assert provider.inputs["username"] == "dba"
    assert provider.inputs["sslmode"] == "verify-full"
    assert provider.inputs["password"] == FAKE_SECRET
    assert provider.is_secret("password")
    assert provider.dependencies == []
    assert run.outputs["identity"] == "db.example.com:6432/naap"
    assert "admin_password" in run.secret_outputs


@pytest.mark.parametrize("sslmode", ["require", "verify-ca", "verify-full"])
def test_an_update_refuses_an_sslmode_the_server_cannot_meet_in_one_line(
    monkeypatch: pytest.MonkeyPatch, sslmode: str
) -> None:
    """Trap: the default `require` against a server without TLS used to fail
    part-way with the provider's raw "pq: SSL is not enabled on the server"."""
    tls_answer(monkeypatch, False)
    server = {**EXTERNAL["naap-db:server"], "sslmode": sslmode}
    run = run_server("dev", {**EXTERNAL, "naap-db:server": server}, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    assert message.startswith(f"naap-db:server.sslmode: {sslmode!r} needs TLS, but the server at ")
    assert "db.example.com:6432 does not offer it" in message
    assert "pulumi config set --stack dev --path naap-db:server.sslmode disable" in message
    assert "\n" not in message
    assert [r for r in run.resources if r.custom] == []


@pytest.mark.parametrize(
    ("sslmode", "offered", "preview"),
    [
        ("disable", False, False),  # no TLS wanted
        ("prefer", False, False),  # libpq falls back to plain
        ("require", True, False),  # offered
        ("require", None, False),  # unreachable: the provider says why
        ("require", False, True),  # a preview connects to nothing
    ],
)
def test_the_tls_probe_lets_through_what_libpq_would(
    monkeypatch: pytest.MonkeyPatch, sslmode: str, offered: bool | None, preview: bool
) -> None:
    asked = tls_answer(monkeypatch, offered)
    server = {**EXTERNAL["naap-db:server"], "sslmode": sslmode}
    run = run_server("dev", {**EXTERNAL, "naap-db:server": server}, preview=preview)
    assert run.outputs["sslmode"] == sslmode
    assert asked == (
        [] if preview or sslmode in ("disable", "prefer") else [("db.example.com", 6432)]
    )


# The whole program (`__main__.py`).


BAD_CONFIG = [
    ("unknown-kind", "dev", {"naap-db:server": {"kind": "k8s"}}, "naap-db:server.kind"),
    (
        "rds-without-subnets",
        "prod",
        {"naap-db:server": {"kind": "rds", "vpcId": "vpc-1", "allowedCidrs": ["10.0.0.0/8"]}},
        "naap-db:server.subnetIds",
    ),
    (
        "external-without-host",
        "dev",
        {"naap-db:server": {"kind": "external"}},
        "naap-db:server.host",
    ),
    (
        "port-out-of-range",
        "dev",
        {"naap-db:server": {"kind": "container", "port": 0}},
        "naap-db:server.port",
    ),
    (
        "image-latest",
        "dev",
        {"naap-db:server": {"kind": "container", "image": "postgres:latest"}},
        "naap-db:server.image",
    ),
    (
        "image-untagged",
        "dev",
        {"naap-db:server": {"kind": "container", "image": "postgres"}},
        "naap-db:server.image",
    ),
    (
        "plaintext-admin-password",
        "dev",
        {"naap-db:server": EXTERNAL["naap-db:server"], "naap-db:adminPassword": "hunter2"},
        "naap-db:adminPassword",
    ),
    (
        "prod-publicly-accessible",
        "prod",
        {"naap-db:server": {"publiclyAccessible": True}},
        "naap-db:server.publiclyAccessible",
    ),
    (
        "prod-open-ingress",
        "prod",
        {"naap-db:server": {"allowedCidrs": ["0.0.0.0/0"]}},
        "naap-db:server.allowedCidrs[0]",
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    [case[1:] for case in BAD_CONFIG],
    ids=[case[0] for case in BAD_CONFIG],
)
def test_bad_config_registers_nothing(
    run_stack: Any, stack: str, overrides: dict[str, Any], key: str
) -> None:
    server = overrides.get("naap-db:server", {})
    if stack == "prod" and "kind" not in server:
        # a change to the committed prod server rather than a whole new one
        overrides = {**overrides, "naap-db:server": {**prod_server_config(), **server}}
    run = run_stack(stack, overrides, raise_errors=False)
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    assert message.startswith(f"{key}: ")
    assert "\n" not in message
    assert "hunter2" not in message
    assert run.resources == []


def test_whole_dev_program_keeps_the_admin_password_secret(run_stack: Any) -> None:
    run = run_stack("dev")
    password = run.one(PASSWORD, "admin").state["result"]
    assert plaintext_leaks(run, password) == []
    for name, value in run.outputs.items():
        if password in json.dumps(value):
            assert name in run.secret_outputs, name
    for provider in run.of_type(PROVIDER):
        assert provider.is_secret("password")


def test_whole_prod_program_needs_no_superuser(run_stack: Any, lambda_zip: Path) -> None:
    """The RDS master is not a superuser: nothing may rely on being one."""
    credentials = json.loads(harness.stack_config("prod")[0]["naap-db:credentials"])
    run = run_stack(
        "prod", {"naap-db:credentials": {**credentials, "lambdaArchive": str(lambda_zip)}}
    )
    assert [p.inputs["superuser"] for p in run.of_type(PROVIDER)] == ["false"]
    superuser_only = ("superuser", "replication", "bypassRowLevelSecurity")
    for role in run.of_type("postgresql:index/role:Role"):
        for attribute in superuser_only:
            assert role.inputs.get(attribute) in (None, False), (role.name, attribute)
    for resource in run.resources:
        # Untrusted languages, extensions and server-side files need a superuser.
        assert resource.type not in (
            "postgresql:index/extension:Extension",
            "postgresql:index/server:Server",
            "postgresql:index/userMapping:UserMapping",
        ), resource.name
    assert plaintext_leaks(run, FAKE_SECRET) == []


def prod_server_config() -> dict[str, Any]:
    """The committed prod stack's `naap-db:server`."""
    return dict(json.loads(harness.stack_config("prod")[0]["naap-db:server"]))

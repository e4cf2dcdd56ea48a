"""The pooler and the read replicas under mocks, with the real stack files
plus `naap-db:pooler` / `naap-db:replicas`: what is registered, with which
inputs and options, which outputs are secret, what is protected, and which
URL each login is handed."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from naapdb import names, proxy_credentials, scram
from naapdb.pooler import DEFAULT_PGBOUNCER_IMAGE, pools
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Run

NETWORK = "docker:index/network:Network"
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
PROXY = "aws:rds/proxy:Proxy"
TARGET_GROUP = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
TARGET = "aws:rds/proxyTarget:ProxyTarget"
INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"
COMMAND = "command:local:Command"
PASSWORD = "random:index/randomPassword:RandomPassword"

CONTAINER_POOLER = {"naap-db:pooler": {"kind": "container"}}
RDS_POOLER = {"naap-db:pooler": {"kind": "rds"}}


@pytest.fixture(scope="module")
def dev() -> Run:
    return harness.run_program("dev", CONTAINER_POOLER)


@pytest.fixture(scope="module")
def prod(lambda_zip: Path) -> Run:
    return harness.run_program("prod", {**RDS_POOLER, "naap-db:replicas": 2})


def passwords_of(run: Run) -> dict[str, str]:
    """Login -> its generated password (the mock's)."""
    found = {}
    for resource in run.of_type(PASSWORD):
        keepers = resource.inputs.get("keepers") or {}
        # the push key is no login's password (the push logins' derive from it)
        if "naap:database:Credentials" in resource.parent and keepers["role"] != "push_key":
            found[keepers["role"]] = resource.state["result"]
    return found


# --- dev: PgBouncer beside the container ----------------------------------------


def test_no_pooler_no_network_and_the_server_container_is_unchanged() -> None:
    plain = harness.run_program("dev")
    assert not plain.of_type(NETWORK)
    (server,) = plain.of_type(CONTAINER)
    assert "networksAdvanced" not in server.inputs
    assert "pooler" not in plain.outputs and "direct_urls" not in plain.outputs


def test_the_server_joins_the_stacks_network_under_its_name(dev: Run) -> None:
    network = dev.one(NETWORK)
    assert network.inputs["name"] == "naap-db-dev-net"
    server = dev.one(CONTAINER, "server-container")
    assert server.inputs["networksAdvanced"] == [
        {"name": "naap-db-dev-net", "aliases": ["naap-db-dev"]}
    ]


def test_pgbouncer_runs_a_pinned_image_on_loopback_on_the_same_network(dev: Run) -> None:
    image = dev.one(IMAGE, "pooler")
    assert image.inputs["name"] == DEFAULT_PGBOUNCER_IMAGE
    assert image.inputs["keepLocally"] is True
    pooler = dev.one(CONTAINER, "pooler")
    assert pooler.inputs["name"] == "naap-db-dev-pooler"
    assert pooler.inputs["entrypoints"] == ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
    assert pooler.inputs["ports"] == [
        {"internal": 6432, "external": 6432, "ip": "127.0.0.1", "protocol": "tcp"}
    ]
    assert pooler.inputs["networksAdvanced"] == [{"name": "naap-db-dev-net"}]
    assert pooler.delete_before_replace


def uploads(run: Run) -> dict[str, str]:
    pooler = run.one(CONTAINER, "pooler")
    return {upload["file"]: upload["content"] for upload in pooler.inputs["uploads"]}


def test_its_config_has_one_pool_per_pooled_login_sized_by_its_limit(dev: Run) -> None:
    config = uploads(dev)["/etc/pgbouncer/pgbouncer.ini"]
    plan = load_stack_settings("dev", ROOT).plan
    for role in plan.login_roles:
        line = f"{role.name} = max_user_connections={role.limits.connections}"  # type: ignore[union-attr]
        # the push (the migrator and each schema's push login) goes direct
        direct = role.name == names.MIGRATOR or role.purpose == "schema-migrator"
        assert (line in config) == (not direct), role.name
    assert "naap = host=naap-db-dev port=5432 dbname=naap max_db_connections=65" in config
    assert "user=" not in config.split("[users]")[0]  # SCRAM pass-through needs none
    assert "pool_mode = transaction" in config
    assert "auth_type = scram-sha-256" in config
    assert "max_prepared_statements = 200" in config  # PgBouncer 1.25 in the image


def test_its_auth_file_is_secret_and_holds_the_servers_verifiers_only(dev: Run) -> None:
    pooler = dev.one(CONTAINER, "pooler")
    # The auth file's content is sent secret; the config (no secret) is not.
    assert pooler.secret_paths == ["uploads[1].content"]
    assert pooler.inputs["uploads"][1]["file"] == "/etc/pgbouncer/userlist.txt"
    assert "uploads" in pooler.additional_secret_outputs
    auth = uploads(dev)["/etc/pgbouncer/userlist.txt"]
    passwords = passwords_of(dev)
    assert not any(password in auth for password in passwords.values())
    expected = {
        login: scram.verifier(password, login)
        for login, password in passwords.items()
        if login != names.MIGRATOR
    }
    lines = dict(line.replace('"', "").split(" ") for line in auth.splitlines())
    assert lines == expected
    # The server's roles get the very same verifiers.
    roles = {
        r.inputs["name"]: r.inputs["password"]
        for r in dev.of_type("postgresql:index/role:Role")
        if r.inputs.get("login")
    }
    assert all(roles[login] == verifier for login, verifier in lines.items())


def test_application_logins_get_the_pooled_url_and_the_migrator_the_direct_one(dev: Run) -> None:
    urls = dev.outputs["connection_urls"]
    direct = dev.outputs["direct_urls"]
    assert {"connection_urls", "direct_urls"} <= dev.secret_outputs
    for login, url in urls.items():
        port = urlsplit(url).port
        assert port == (5432 if login == names.MIGRATOR else 6432), login
        assert urlsplit(direct[login]).port == 5432
        assert urlsplit(url).password == urlsplit(direct[login]).password


def test_the_push_goes_direct(dev: Run) -> None:
    (push,) = [c for c in dev.of_type(COMMAND) if "push" in c.name]
    url = push.inputs["environment"]["DATABASE_URL"]
    assert urlsplit(url).username == names.MIGRATOR and urlsplit(url).port == 5432


def test_the_pooler_output_says_what_pooling_means_and_holds_no_secret(dev: Run) -> None:
    pooler = dev.outputs["pooler"]
    assert "pooler" not in dev.secret_outputs
    assert pooler["kind"] == "container" and pooler["port"] == 6432
    assert pooler["pool_mode"] == "transaction"
    assert "prepared statements" in pooler["notes"] and "pgbouncer=true" in pooler["notes"]
    assert not any(p in json.dumps(pooler) for p in passwords_of(dev).values())


def test_session_pooling_and_an_old_pgbouncer_change_the_config_and_the_notes() -> None:
    run = harness.run_program(
        "dev",
        {
            "naap-db:pooler": {
                "kind": "container",
                "poolMode": "session",
                "image": "edoburu/pgbouncer:1.18.0-p0",
                "port": 16432,
            }
        },
    )
    config = uploads(run)["/etc/pgbouncer/pgbouncer.ini"]
    assert "pool_mode = session" in config and "max_prepared_statements" not in config
    assert run.outputs["pooler"]["notes"].startswith("session pooling")
    assert urlsplit(run.outputs["connection_urls"][names.APP]).port == 16432


def test_an_external_pooler_creates_nothing_and_hands_out_its_address() -> None:
    run = harness.run_program(
        "dev",
        {"naap-db:pooler": {"kind": "external", "host": "pgbouncer.internal", "port": 6543}},
    )
    assert not run.of_type(NETWORK) and len(run.of_type(CONTAINER)) == 1
    url = urlsplit(run.outputs["connection_urls"][names.APP])
    assert (url.hostname, url.port) == ("pgbouncer.internal", 6543)
    assert parse_qs(url.query) == {"sslmode": ["require"]}
    assert "pgbouncer=true" in run.outputs["pooler"]["notes"]


def test_the_budget_is_logged_for_preview_with_both_sides() -> None:
    from components.database import budget_lines

    lines = budget_lines(load_stack_settings("dev", ROOT))
    assert lines == [
        "connection budget: 95 of 197 connections: logins 75 + admin 20; max_connections 200 "
        "(naap-db:limits.maxConnections) - 3 reserved for superusers"
    ]


def test_the_program_logs_the_budget_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    logged: list[str] = []
    monkeypatch.setattr(
        pulumi.log, "info", lambda message, resource=None, **_: logged.append(message)
    )
    harness.run_program("dev", CONTAINER_POOLER)
    assert any(line.startswith("connection budget, pooler (container") for line in logged)
    # direct: the migrator's 2 and each schema's push login's 1
    direct = "pools 65 + direct logins 10 + admin 20 = 95 of 197"
    assert f"connection budget, server: {direct}" in logged


# --- prod: RDS Proxy ---------------------------------------------------------------


def test_the_proxy_requires_tls_and_scram_and_reads_one_secret_per_login(prod: Run) -> None:
    proxy = prod.one(PROXY)
    inputs = proxy.inputs
    assert inputs["engineFamily"] == "POSTGRESQL" and inputs["requireTls"] is True
    assert inputs["name"] == "naap-db-prod-proxy"
    assert inputs["debugLogging"] is False
    plan = load_stack_settings("prod", ROOT).plan
    pooled = [pool.login for pool in pools(plan)]
    assert len(inputs["auths"]) == len(pooled) == 20  # both logins of 10 identities
    secrets = {r.inputs["name"]: r for r in prod.of_type(SECRET)}
    for auth, login in zip(inputs["auths"], pooled, strict=True):
        assert auth["authScheme"] == "SECRETS"
        assert auth["clientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256"
        assert auth["iamAuth"] == "DISABLED"
        assert auth["secretArn"] == secrets[f"naap-db/prod/proxy/{login}"].state["arn"]
    assert not any("migrator" in login for login in pooled)
    assert proxy.protect


def test_the_login_secrets_start_with_the_first_password_and_the_rotation_owns_them(
    prod: Run,
) -> None:
    passwords = passwords_of(prod)
    versions = {
        json.loads(v.inputs["secretString"])["username"]: v
        for v in prod.of_type(SECRET_VERSION)
        if "proxy" in v.name
    }
    assert len(versions) == 20
    for login, version in versions.items():
        assert version.is_secret("secretString")
        assert version.protect
        assert "secretString" in version.ignore_changes or "secret_string" in version.ignore_changes
        document = json.loads(version.inputs["secretString"])
        assert document == {"username": login, "password": passwords.get(login, "")}
        assert (document["password"] != "") == login.endswith("_a")


def test_the_proxy_role_may_read_the_login_secrets_and_nothing_else(prod: Run) -> None:
    role = prod.one(ROLE, "pooler-proxy")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "rds.amazonaws.com"}
    assert prod.one(PROXY).inputs["roleArn"] == role.state["arn"]
    policy = json.loads(prod.one(ROLE_POLICY, "pooler-proxy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    pattern = statement["Resource"]
    assert pattern == "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod/proxy/*"
    for secret in prod.of_type(SECRET):
        reads = fnmatch.fnmatchcase(secret.state["arn"], pattern)
        assert reads == ("/proxy/" in secret.inputs["name"]), secret.inputs["name"]


def test_the_target_group_takes_its_share_of_max_connections_from_the_budget(prod: Run) -> None:
    group = prod.one(TARGET_GROUP)
    config = group.inputs["connectionPoolConfig"]
    # (8 x 20 + 100 + 10) x 2 = 540 pooled of db.m7g.large's 901.
    assert config["maxConnectionsPercent"] == 60
    assert config["connectionBorrowTimeout"] == 120
    target = prod.one(TARGET)
    assert target.inputs["dbInstanceIdentifier"] == "naap-db-prod"
    assert target.inputs["dbProxyName"] == "naap-db-prod-proxy"


def test_the_proxy_sits_in_the_instances_network(prod: Run) -> None:
    proxy = prod.one(PROXY).inputs
    assert proxy["vpcSubnetIds"] == [
        "subnet-0123456789abcdef0",
        "subnet-0123456789abcdef1",
    ]
    group = prod.one(SECURITY_GROUP, "pooler-proxy")
    clients = prod.one(SECURITY_GROUP, "server-clients")
    assert proxy["vpcSecurityGroupIds"] == [group.id, clients.id]
    ingress = group.inputs["ingress"]
    assert ingress[0]["cidrBlocks"] == ["10.0.0.0/16"] and ingress[0]["fromPort"] == 5432
    assert clients.id in ingress[1]["securityGroups"]
    rule = prod.one(EGRESS_RULE, "clients-to-proxy")
    assert rule.inputs["securityGroupId"] == clients.id
    assert rule.inputs["referencedSecurityGroupId"] == group.id


def test_pooled_prod_urls_verify_the_proxys_certificate(prod: Run) -> None:
    urls = prod.outputs["connection_urls"]
    app = urlsplit(urls["naap_app_a"])
    assert app.hostname == "naap-db-prod-proxy.proxy-abc123.us-east-1.rds.amazonaws.com"
    assert parse_qs(app.query) == {
        "sslmode": ["verify-full"],
        "sslrootcert": ["/etc/ssl/certs/ca-certificates.crt"],
    }
    migrator = urlsplit(urls["naap_migrator_a"])
    assert migrator.hostname == "naap.abc123.us-east-1.rds.amazonaws.com"
    assert "pgbouncer=true" in prod.outputs["pooler"]["notes"]


def test_the_rotation_keeps_the_proxys_login_secrets_current(prod: Run) -> None:
    function = prod.one(FUNCTION)
    variables = function.inputs["environment"]["variables"]
    assert variables[proxy_credentials.PROXY_SECRETS_VARIABLE] == "naap-db/prod/proxy/"
    policy = json.loads(prod.one(ROLE_POLICY, "rotation-lambda").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    keep = statements["KeepTheProxyLoginSecretsCurrent"]
    assert keep["Action"] == ["secretsmanager:PutSecretValue"]
    assert keep["Resource"] == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod/proxy/*"
    )


def test_without_a_proxy_the_rotation_lambda_has_no_proxy_rights(lambda_zip: Path) -> None:
    run = harness.run_program("prod")
    function = run.one(FUNCTION)
    assert (
        proxy_credentials.PROXY_SECRETS_VARIABLE not in function.inputs["environment"]["variables"]
    )
    policy = json.loads(run.one(ROLE_POLICY).inputs["policy"])
    assert "KeepTheProxyLoginSecretsCurrent" not in {s["Sid"] for s in policy["Statement"]}


def test_with_single_rotation_the_login_secrets_follow_pulumis_passwords(
    lambda_zip: Path,
) -> None:
    run = harness.run_program("prod", {**RDS_POOLER, "naap-db:credentials": {"rotation": "single"}})
    versions = [v for v in run.of_type(SECRET_VERSION) if "proxy" in v.name]
    assert len(versions) == 10  # one login per identity, minus the migrator
    assert all(not v.ignore_changes for v in versions)


# --- prod: read replicas ---------------------------------------------------------


def replicas_of(run: Run) -> list[harness.Resource]:
    return [r for r in run.of_type(INSTANCE) if r.inputs.get("replicateSourceDb")]


def test_replicas_copy_the_instance_encrypted_in_its_groups_and_protected(prod: Run) -> None:
    primary = next(r for r in prod.of_type(INSTANCE) if not r.inputs.get("replicateSourceDb"))
    # The SDK registers them concurrently: their order in the run is not theirs.
    replicas = sorted(replicas_of(prod), key=lambda r: str(r.inputs["identifier"]))
    assert [r.inputs["identifier"] for r in replicas] == [
        "naap-db-prod-replica-1",
        "naap-db-prod-replica-2",
    ]
    for replica in replicas:
        inputs = replica.inputs
        assert inputs["replicateSourceDb"] == primary.inputs["identifier"]
        assert inputs["instanceClass"] == primary.inputs["instanceClass"]
        assert inputs["storageEncrypted"] is True
        assert inputs.get("kmsKeyId") == primary.inputs.get("kmsKeyId")
        assert inputs["parameterGroupName"] == primary.inputs["parameterGroupName"]
        assert inputs["vpcSecurityGroupIds"] == primary.inputs["vpcSecurityGroupIds"]
        assert inputs["publiclyAccessible"] is False
        assert inputs["deletionProtection"] is True
        assert inputs["skipFinalSnapshot"] is True  # RDS takes none of a replica
        assert "finalSnapshotIdentifier" not in inputs
        assert "username" not in inputs and "dbName" not in inputs
        assert replica.protect
    groups = {g.inputs["name"] for g in prod.of_type(LOG_GROUP)}
    assert "/aws/rds/instance/naap-db-prod-replica-2/postgresql" in groups


def test_replica_endpoints_are_plain_and_read_urls_secret(prod: Run) -> None:
    assert prod.outputs["replica_endpoints"] == [
        "naap-db-prod-replica-1.abc123.us-east-1.rds.amazonaws.com",
        "naap-db-prod-replica-2.abc123.us-east-1.rds.amazonaws.com",
    ]
    assert "replica_endpoints" not in prod.secret_outputs
    assert "read_urls" in prod.secret_outputs
    (login,) = prod.outputs["read_urls"]
    assert login == "naap_readonly_a"
    url = urlsplit(prod.outputs["read_urls"][login])
    assert url.hostname == "naap-db-prod-replica-1.abc123.us-east-1.rds.amazonaws.com"
    assert parse_qs(url.query)["sslmode"] == ["verify-full"]
    assert url.password == passwords_of(prod)[login]


def test_plugins_that_ask_read_from_replicas_spread_over_them(lambda_zip: Path) -> None:
    import yaml

    catalogue = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["naap-db:plugins"][
        "value"
    ]
    asking = {"wallet", "gateway"}
    entries = [
        {**entry, "readFrom": "replica"} if entry["plugin"] in asking else entry
        for entry in catalogue
    ]
    run = harness.run_program(
        "prod",
        {
            "naap-db:plugins": entries,
            "naap-db:replicas": [
                {"instanceClass": "db.r6g.large", "availabilityZone": "us-east-1b"},
                {},
            ],
        },
    )
    hosts = {login: urlsplit(url).hostname for login, url in run.outputs["read_urls"].items()}
    assert hosts == {
        "naap_wallet_a": "naap-db-prod-replica-1.abc123.us-east-1.rds.amazonaws.com",
        "naap_gateway_a": "naap-db-prod-replica-2.abc123.us-east-1.rds.amazonaws.com",
        "naap_readonly_a": "naap-db-prod-replica-1.abc123.us-east-1.rds.amazonaws.com",
    }
    first, second = sorted(replicas_of(run), key=lambda r: r.inputs["identifier"])
    assert first.inputs["instanceClass"] == "db.r6g.large"
    assert first.inputs["availabilityZone"] == "us-east-1b"
    assert second.inputs["instanceClass"] == "db.m7g.large"
    assert "availabilityZone" not in second.inputs


def test_no_replicas_no_read_outputs(lambda_zip: Path) -> None:
    run = harness.run_program("prod")
    assert not replicas_of(run)
    assert "read_urls" not in run.outputs and "replica_endpoints" not in run.outputs


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"naap-db:pooler": {"kind": "rds"}}, "naap-db:pooler.kind"),
        ({"naap-db:replicas": 1}, "naap-db:replicas"),
        (
            {"naap-db:pooler": {"kind": "container", "image": "edoburu/pgbouncer"}},
            "naap-db:pooler.image",
        ),
    ],
)
def test_bad_config_registers_nothing(overrides: dict[str, Any], key: str) -> None:
    run = harness.run_program("dev", overrides, raise_errors=False)
    assert run.error is not None and str(run.error).startswith(f"{key}:")
    assert not [r for r in run.resources if r.custom]

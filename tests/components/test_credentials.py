"""Credentials under mocks, with the real dev and prod stack files: one
generated password per login role with its epochs in the keepers, secret
connection URLs, and in prod the Secrets Manager secrets, the rotation
Lambda, its rights and the rotation schedules."""

from __future__ import annotations

import fnmatch
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from components.credentials import connection_url
from components.rotation import ARCHIVE_VARIABLE
from naapdb import names, pushkey, scram
from naapdb.stackfiles import load_stack_settings
from tests import harness
from tests.harness import ROOT, Run

PASSWORD = "random:index/randomPassword:RandomPassword"
ROLE = "postgresql:index/role:Role"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PRIVILEGE_TYPES = (
    "postgresql:index/grant:Grant",
    "postgresql:index/defaultPrivileges:DefaultPrivileges",
)
MASTER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1"
PROD = load_stack_settings("prod", ROOT)
DEV = load_stack_settings("dev", ROOT)


def login_passwords(run: Run) -> dict[str, harness.Resource]:
    """The generated passwords of the plan's logins (not the server's admin)."""
    found = {}
    for resource in run.of_type(PASSWORD):
        keepers = resource.inputs.get("keepers") or {}
        if "naap:database:Credentials" in resource.parent:
            found[keepers["role"]] = resource
    return found


def prod_credentials(**extra: Any) -> dict[str, Any]:
    """Prod's own `naap-db:credentials` with `extra` keys."""
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    return {"naap-db:credentials": {**stack["config"]["naap-db:credentials"], **extra}}


@pytest.fixture(scope="module")
def dev() -> Run:
    return harness.run_program("dev")


@pytest.fixture(scope="module")
def prod(lambda_zip: Path) -> Run:
    return harness.run_program("prod")  # the committed stack file, nothing overridden


# --- dev ---------------------------------------------------------------------


def test_dev_has_one_password_per_login_role_with_its_epochs(dev: Run) -> None:
    passwords = login_passwords(dev)
    key = passwords.pop("push_key")
    # every login's but the schemas' push logins: theirs derive from the push key
    assert sorted(passwords) == sorted(role.name for role in DEV.plan.first_logins)
    assert DEV.plan.first_logins == tuple(
        role for role in DEV.plan.login_roles if role.purpose != "schema-migrator"
    )
    assert key.inputs["keepers"] == {"role": "push_key", "epoch": "0"}
    for role, resource in [*passwords.items(), ("push_key", key)]:
        assert resource.inputs["length"] >= 32
        assert resource.inputs["special"] is False  # letters and digits: URL- and libpq-safe
        if role != "push_key":
            assert resource.inputs["keepers"] == {"role": role, "epoch": "0", "role_epoch": "0"}


def test_a_push_logins_epoch_renews_its_password_alone(dev: Run) -> None:
    """Its password is an HMAC of the push key, its name and its epoch."""
    bumped = harness.run_program(
        "dev",
        {"naap-db:credentials": {"rotation": "single", "epochs": {"plugin_wallet_migrator": 2}}},
    )

    def verifiers(run: Run) -> dict[str, str]:
        return {
            r.inputs["name"]: r.inputs["password"]
            for r in run.of_type(ROLE)
            if r.inputs["name"].endswith("_migrator") and r.inputs["name"] != names.MIGRATOR
        }

    before, after = verifiers(dev), verifiers(bumped)
    assert {login for login in before if before[login] != after[login]} == {
        "plugin_wallet_migrator"
    }
    key = login_passwords(bumped)["push_key"].state["result"]
    wallet = pushkey.login_password(key, "plugin_wallet_migrator", 2)
    assert after["plugin_wallet_migrator"] == scram.verifier(wallet, "plugin_wallet_migrator")


def test_every_login_role_gets_its_password_as_a_secret(dev: Run) -> None:
    logins = [r for r in dev.of_type(ROLE) if r.inputs.get("login")]
    assert {r.inputs["name"] for r in logins} == {role.name for role in DEV.plan.login_roles}
    for role in logins:
        assert role.is_secret("password"), role.name
        assert role.inputs["password"].startswith("SCRAM-SHA-256$4096:"), role.name
        assert f"pw-naap-credentials-{role.inputs['name']}-" not in role.inputs["password"]


def test_bumping_one_roles_epoch_changes_only_that_roles_keepers(dev: Run) -> None:
    bumped = harness.run_program(
        "dev", {"naap-db:credentials": {"rotation": "single", "epochs": {"naap_app": 1}}}
    )
    before = {role: r.inputs["keepers"] for role, r in login_passwords(dev).items()}
    after = {role: r.inputs["keepers"] for role, r in login_passwords(bumped).items()}
    changed = {role for role in before if before[role] != after[role]}
    assert changed == {"naap_app"}
    assert after["naap_app"]["role_epoch"] == "1"
    urls_before, urls_after = dev.outputs["connection_urls"], bumped.outputs["connection_urls"]
    assert {r for r in urls_before if urls_before[r] != urls_after[r]} == {"naap_app"}


def test_bumping_the_stack_epoch_changes_every_password(dev: Run) -> None:
    bumped = harness.run_program("dev", {"naap-db:credentials": {"rotation": "single", "epoch": 3}})
    after = login_passwords(bumped)
    assert all(r.inputs["keepers"]["epoch"] == "3" for r in after.values())
    assert len(after) == len(login_passwords(dev))


def test_connection_urls_are_one_secret_output_with_host_port_database_and_sslmode(
    dev: Run,
) -> None:
    assert "connection_urls" in dev.secret_outputs
    urls = dev.outputs["connection_urls"]
    passwords = {role: r.state["result"] for role, r in login_passwords(dev).items()}
    passwords.pop("push_key")  # no URL: the push derives its logins' passwords from it
    assert sorted(urls) == sorted(passwords)
    for role, url in urls.items():
        parts = urlsplit(url)
        assert (parts.scheme, parts.username, parts.hostname, parts.port, parts.path) == (
            "postgresql",
            role,
            "127.0.0.1",
            5432,
            "/naap",
        )
        assert unquote(parts.password or "") == passwords[role]
        assert parse_qs(parts.query) == {"sslmode": ["disable"]}  # the container has no TLS
    # Nothing else carries a credential in the clear.
    for name, value in dev.outputs.items():
        if name not in dev.secret_outputs:
            assert not any(p in json.dumps(value) for p in passwords.values()), name


def test_connection_url_quotes_every_part() -> None:
    password = "p@ss:w/rd?#%& ='"
    url = connection_url("naap_app", password, "db.example", 5433, "naap", "verify-full")
    parsed = conninfo_to_dict(url)
    assert parsed["password"] == password
    assert (parsed["user"], parsed["host"], parsed["port"], parsed["dbname"]) == (
        "naap_app",
        "db.example",
        "5433",
        "naap",
    )
    assert parsed["sslmode"] == "verify-full"
    assert (
        conninfo_to_dict(connection_url("u", "pw", "::1", 5432, "naap", "disable"))["host"] == "::1"
    )


def test_alternating_rotation_without_rds_stops_with_the_key() -> None:
    # Two logins per identity also overflow the container's 100 connections
    # (naapdb.limits); a roomy ceiling leaves the rotation's own error.
    run = harness.run_program(
        "dev",
        {
            "naap-db:credentials": {"rotation": "alternating"},
            "naap-db:limits": {"maxConnections": 1000},
        },
        raise_errors=False,
    )
    assert run.error is not None
    assert "naap-db:credentials.rotation" in str(run.error) and "rds" in str(run.error)


# --- prod --------------------------------------------------------------------


def test_prod_has_alternating_logins_whose_password_changes_pulumi_ignores(prod: Run) -> None:
    """Each identity is NOLOGIN and carried by `_a` and `_b`. Only `_a`, the
    login its secret starts on, gets a generated password; `_b` is LOGIN
    without one (unusable) until the first rotation's setSecret. Both
    ignore password changes: the rotation owns them."""
    passwords = login_passwords(prod)
    passwords.pop("push_key")
    first = {f"{i}_a" for i in PROD.plan.identities}
    idle = {f"{i}_b" for i in PROD.plan.identities}
    assert set(passwords) == first  # one RandomPassword per identity
    roles = {r.inputs["name"]: r for r in prod.of_type(ROLE)}
    for identity in PROD.plan.identities:
        assert not roles[identity].inputs.get("login")
    for login in first | idle:
        assert roles[login].inputs["login"] is True
        assert "password" in roles[login].ignore_changes
    for login in first:
        assert roles[login].is_secret("password")
        assert roles[login].inputs["password"] == scram.verifier(
            passwords[login].state["result"], login
        )
    for login in idle:
        assert "password" not in roles[login].inputs
    urls = prod.outputs["connection_urls"]
    assert "connection_urls" in prod.secret_outputs
    assert set(urls) == first
    # verify-full against the RDS CA bundle, at the path clients keep it.
    for url in urls.values():
        query = parse_qs(urlsplit(url).query)
        assert query["sslmode"] == ["verify-full"]
        assert query["sslrootcert"] == ["/etc/ssl/certs/rds-global-bundle.pem"]


def test_prod_keeps_one_protected_secret_per_identity_in_the_rds_format(prod: Run) -> None:
    secrets = {r.inputs["name"]: r for r in prod.of_type(SECRET)}
    assert sorted(secrets) == sorted(f"naap-db/prod/{i}" for i in PROD.plan.identities)
    assert all(secret.protect for secret in secrets.values())
    versions = prod.of_type(SECRET_VERSION)
    assert len(versions) == len(secrets)
    passwords = {role: r.state["result"] for role, r in login_passwords(prod).items()}
    by_secret_id = {secret.id: name for name, secret in secrets.items()}
    for version in versions:
        assert version.is_secret("secretString")
        assert {"secretString", "versionStages"} <= set(version.ignore_changes)
        assert version.protect
        identity = by_secret_id[version.inputs["secretId"]].rsplit("/", 1)[1]
        document = json.loads(version.inputs["secretString"])
        assert document == {
            "engine": "postgres",
            "host": "naap.abc123.us-east-1.rds.amazonaws.com",
            "port": 5432,
            "dbname": "naap",
            "username": f"{identity}_a",
            "password": passwords[f"{identity}_a"],
            "masterarn": MASTER_ARN,
            "sslmode": "verify-full",
        }
    assert sorted(prod.outputs["secret_arns"]) == sorted(PROD.plan.identities)


def test_prod_deploys_the_rotation_lambda_in_the_vpc(prod: Run, lambda_zip: Path) -> None:
    function = prod.one(FUNCTION)
    assert function.inputs["runtime"] == "python3.12"
    assert function.inputs["handler"] == "naapdb.rotate.lambda_handler"
    assert function.inputs["architectures"] == ["x86_64"]
    assert function.inputs["code"]["path"] == str(lambda_zip)
    assert function.inputs["vpcConfig"]["subnetIds"] == list(PROD.server.subnet_ids)  # type: ignore[union-attr]
    # Creating a function in a VPC checks that its role may manage network
    # interfaces: the managed policy granting that is attached first.
    vpc_access = prod.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "rotation")
    assert vpc_access.urn in function.dependencies
    groups = function.inputs["vpcConfig"]["securityGroupIds"]
    clients = prod.one("aws:ec2/securityGroup:SecurityGroup", "server-clients")
    own = prod.one("aws:ec2/securityGroup:SecurityGroup", "rotation-lambda")
    assert groups == [clients.id, own.id]
    # The client group may reach the database on 5432 only; the Lambda's own
    # group adds HTTPS for the Secrets Manager API, nothing else.
    own_rules = [
        r
        for r in prod.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if r.inputs["securityGroupId"] == own.id
    ]
    assert [(r.inputs["fromPort"], r.inputs["toPort"]) for r in own_rules] == [(443, 443)]
    assert not prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")


def test_prod_lambda_policy_is_scoped_to_the_identity_secrets(prod: Run) -> None:
    """The four steps on the secrets named like this stack's that are set to
    rotate with this function: every identity secret matches, a secret of
    another stack does not; the schedules wait for the policy, which itself
    waits for no secret (that made the program quadratic)."""
    secret_arns = set(prod.outputs["secret_arns"].values())
    policy_resource = prod.one(ROLE_POLICY)
    policy = json.loads(policy_resource.inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {"RotateTheLoginSecrets", "ReadTheMasterSecret", "GeneratePasswords"}
    rotate = statements["RotateTheLoginSecrets"]
    pattern = rotate["Resource"]
    assert pattern == "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod/*"
    assert all(fnmatch.fnmatchcase(arn, pattern) for arn in secret_arns)
    other_stack = "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/dev/naap_app-a1B2c3"
    assert not fnmatch.fnmatchcase(other_stack, pattern)
    assert rotate["Condition"] == {
        "StringEquals": {
            "secretsmanager:resource/AllowRotationLambdaArn": prod.one(FUNCTION).state["arn"]
        }
    }
    secrets = {r.urn for r in prod.of_type("aws:secretsmanager/secret:Secret")}
    assert not secrets & prod.waits_for(policy_resource)
    assert all(policy_resource.urn in r.dependencies for r in prod.of_type(ROTATION))
    assert set(rotate["Action"]) == {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    assert statements["ReadTheMasterSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert statements["ReadTheMasterSecret"]["Resource"] == [MASTER_ARN]
    # The only wildcard resource: GetRandomPassword has no resource to scope to.
    assert statements["GeneratePasswords"] == {
        "Sid": "GeneratePasswords",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetRandomPassword"],
        "Resource": "*",
    }
    for statement in policy["Statement"]:
        assert all(not a.endswith("*") for a in statement["Action"])
    role = prod.one("aws:iam/role:Role", "rotation")
    assume = json.loads(role.inputs["assumeRolePolicy"])
    assert assume["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    attachment = prod.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "rotation")
    assert attachment.inputs["policyArn"].endswith("service-role/AWSLambdaVPCAccessExecutionRole")


def test_prod_lets_secrets_manager_invoke_the_lambda_for_its_own_secrets(prod: Run) -> None:
    """One permission for the stack (not one per identity: that would be a
    resource per plugin), scoped to this account and to the ARNs of this
    stack's secrets (Lambda matches SourceArn with StringLike)."""
    function = prod.one(FUNCTION)
    permission = prod.one(PERMISSION)
    assert permission.inputs["principal"] == "secretsmanager.amazonaws.com"
    assert permission.inputs["action"] == "lambda:InvokeFunction"
    assert permission.inputs["function"] == function.state["name"]
    assert permission.inputs["sourceAccount"] == "123456789012"
    pattern = permission.inputs["sourceArn"]
    assert pattern == "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod/*"
    for arn in prod.outputs["secret_arns"].values():
        assert fnmatch.fnmatchcase(arn, pattern), arn
    for foreign in (
        MASTER_ARN,
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/dev/naap_app-AbC123",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod-x/naap_app-AbC123",
        "arn:aws:secretsmanager:us-east-1:210987654321:secret:naap-db/prod/naap_app-AbC123",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:naap-db/prod/naap_app-AbC123",
    ):
        assert not fnmatch.fnmatchcase(foreign, pattern), foreign


def test_prod_rotates_every_secret_on_the_configured_schedule_after_the_roles(prod: Run) -> None:
    function = prod.one(FUNCTION)
    rotations = prod.of_type(ROTATION)
    assert {r.inputs["secretId"] for r in rotations} == set(prod.outputs["secret_arns"].values())
    role_urns = {r.inputs["name"]: r.urn for r in prod.of_type(ROLE)}
    schema_urns = {r.inputs["name"]: r.urn for r in prod.of_type("postgresql:index/schema:Schema")}
    # CONNECT is one grant, to naap_connect; every identity is its member.
    (connect_urn,) = [
        r.urn
        for r in prod.of_type("postgresql:index/grant:Grant")
        if r.inputs["objectType"] == "database" and r.inputs["role"] != "public"
    ]
    plan = PROD.plan
    for rotation in rotations:
        assert (
            rotation.inputs["rotationRules"]["automaticallyAfterDays"]
            == PROD.credentials.rotation_days
        )
        assert rotation.inputs["rotationLambdaArn"] == function.state["arn"]
        assert rotation.inputs["rotateImmediately"] is False
        # Switching rotation on logs in as the identity: it waits for what that
        # login needs (its roles, naap_connect and its CONNECT, the schemas it
        # reaches), no more.
        identity = rotation.name.removeprefix("naap-rotation-")
        needed = {role_urns[name] for name in (identity, *plan.logins_of(identity))}
        needed |= {role_urns[names.CONNECT_GROUP], connect_urn}
        reached = {plan.role(m.group).schema for m in plan.memberships if m.member == identity} - {
            None
        }
        needed |= {schema_urns[schema] for schema in reached}
        # ...each schema's grants and default privileges too (through the
        # last of its chain; one dependency a schema, not one a resource)
        privileges = {
            r.urn
            for r in prod.resources
            if r.type in PRIVILEGE_TYPES and r.inputs.get("schema") in reached
        }
        waited = prod.waits_for(rotation)
        assert needed | privileges <= waited
        assert len(privileges & set(rotation.dependencies)) <= len(reached)
        unrelated = {schema_urns[s.name] for s in plan.schemas if s.name not in reached}
        assert not unrelated & waited


def test_rotation_days_come_from_the_stack() -> None:
    run = harness.run_program("prod", prod_credentials(rotationDays=7))
    assert {r.inputs["rotationRules"]["automaticallyAfterDays"] for r in run.of_type(ROTATION)} == {
        7
    }


def test_a_missing_lambda_zip_names_the_build_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    absent = tmp_path / "absent.zip"
    run = harness.run_program(
        "prod", prod_credentials(lambdaArchive=str(absent)), raise_errors=False
    )
    assert run.error is not None
    assert str(run.error).startswith(f"naap-db:credentials.lambdaArchive: {absent} does not exist")
    assert "python scripts/build-rotation-lambda.py" in str(run.error)
    monkeypatch.setenv(ARCHIVE_VARIABLE, str(absent))
    run = harness.run_program("prod", raise_errors=False)
    assert str(run.error).startswith(f"{ARCHIVE_VARIABLE}: {absent} does not exist")
    assert not any(r.type == FUNCTION for r in run.resources)


def test_the_stack_can_name_its_own_lambda_zip(tmp_path: Path) -> None:
    own = tmp_path / "own.zip"
    with zipfile.ZipFile(own, "w") as archive:
        archive.writestr("naapdb/__init__.py", "")
    run = harness.run_program("prod", prod_credentials(lambdaArchive=str(own)))
    assert run.one(FUNCTION).inputs["code"]["path"] == str(own)

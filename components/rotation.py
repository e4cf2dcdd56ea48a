"""Password rotation of the alternating logins in AWS (prod).

- `IdentitySecrets`: one Secrets Manager secret per login identity, in the
  RDS secret format (engine, host, port, dbname, username, password,
  masterarn) plus `sslmode`, first holding the identity's `_a` login. Pulumi
  writes the first version only: afterwards the rotation owns the value.
- `PasswordRotation`: the rotation Lambda (`naapdb.rotate.lambda_handler`,
  zip built by `scripts/build-rotation-lambda.py`) in the database's subnets,
  a member of the server's client security group (5432 to the database) and
  of its own group (HTTPS to Secrets Manager); an IAM role that may touch
  the secrets of this stack's names set to rotate with this function, and
  read the master secret, nothing else; one permission
  for Secrets Manager to invoke it for this stack's secrets (by name
  pattern, in this account); and a `SecretRotation` per secret every
  `naap-db:credentials.rotationDays` days. Created after the roles exist,
  since Secrets Manager tests the rotation when it is switched on. The
  Lambda's environment names the instance endpoint and master secret it
  may trust (`naapdb/trust.py`: a writer of one identity secret cannot
  steer the master login elsewhere), and a failed rotation raises an alarm
  (`components/alarms.py`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.alarms import rotation_alarms
from components.lambda_build import build_default_archive
from components.rds import assumed_by, aws_scope
from components.server import stack_tags
from naapdb import proxy_credentials, trust
from naapdb.rotate import ENDPOINT_VARIABLE, DbSecret
from naapdb.settings import StackSettings

if TYPE_CHECKING:
    from components.server import DatabaseServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = "scripts/build-rotation-lambda.py"
DEFAULT_ARCHIVE = "build/rotation-lambda.zip"
# Where CI (or the test suite) keeps an already built zip, unless the stack names one.
ARCHIVE_VARIABLE = "NAAPDB_ROTATION_LAMBDA_ZIP"
LAMBDA_RUNTIME = "python3.12"
LAMBDA_HANDLER = "naapdb.rotate.lambda_handler"
LAMBDA_TIMEOUT_SECONDS = 60
LAMBDA_MEMORY_MB = 256
HTTPS_PORT = 443
# Managed policy: CloudWatch Logs plus the ENIs a Lambda in a VPC needs.
VPC_EXECUTION_POLICY = "policy/service-role/AWSLambdaVPCAccessExecutionRole"
# Everything the four steps call on the identity secrets.
ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
# The secret's rotation function, as IAM sees it when the function calls.
ROTATION_FUNCTION_CONDITION = "secretsmanager:resource/AllowRotationLambdaArn"


def secret_name(stack: str, identity: str) -> str:
    """The Secrets Manager name of an identity's secret, e.g. naap-db/prod/naap_app."""
    return f"naap-db/{stack}/{identity}"


def _document_builder(login: str, sslmode: str) -> Callable[[Any], str]:
    """The secret string of one login (the RDS format plus `sslmode`, as the
    rotation reads it), from (host, port, database, password, master arn)."""

    def build(values: Any) -> str:
        host, port, database, password, master_arn = values
        return DbSecret(
            host=host,
            port=int(port),
            dbname=database,
            username=login,
            password=password,
            masterarn=master_arn,
            sslmode=sslmode,
        ).to_json()

    return build


class IdentitySecrets(pulumi.ComponentResource):
    """One secret per login identity, holding its current login."""

    arns: dict[str, pulumi.Output[str]]
    """Identity -> secret ARN."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        passwords: Mapping[str, pulumi.Output[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("naap:database:IdentitySecrets", name, None, opts)
        plan = settings.plan
        master_arn = server.master_secret_arn
        # Credentials refuses alternating rotation without an rds server, which has these.
        assert master_arn is not None
        # A deleted secret would take the only copy of a rotated password with it.
        protected = pulumi.ResourceOptions(parent=self, protect=settings.production)
        self.arns = {}
        for identity in plan.identities:
            first_login = plan.logins_of(identity)[0]
            secret = aws.secretsmanager.Secret(
                f"{name}-{identity}",
                name=secret_name(settings.stack, identity),
                description=f"naap-db {settings.stack}: current login of {identity} (rotated)",
                tags=stack_tags(settings.stack),
                opts=protected,
            )
            built = pulumi.Output.all(
                server.host, server.port, server.database, passwords[first_login], master_arn
            ).apply(_document_builder(first_login, server.sslmode))
            # Secret on its own account, whatever the password's Output says.
            document: pulumi.Output[str] = pulumi.Output.secret(built)  # type: ignore[arg-type]
            aws.secretsmanager.SecretVersion(
                f"{name}-{identity}",
                secret_id=secret.id,
                secret_string=document,
                opts=pulumi.ResourceOptions.merge(
                    protected,
                    # Rotation writes new versions and moves AWSCURRENT.
                    pulumi.ResourceOptions(ignore_changes=["secret_string", "version_stages"]),
                ),
            )
            self.arns[identity] = secret.arn
        self.register_outputs({"arns": self.arns})


class PasswordRotation(pulumi.ComponentResource):
    """The rotation Lambda, its network, its rights and the schedules."""

    function_arn: pulumi.Output[str]
    database_endpoint: pulumi.Output[str]
    """`host:port/dbname`: where the rotation may send credentials."""
    alarm_topic_arn: pulumi.Output[str]
    """The SNS topic failed rotations go to (components/alarms.py)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        secret_arns: Mapping[str, pulumi.Output[str]],
        ready_for: Callable[[str], Sequence[pulumi.Resource]] = lambda identity: (),
        proxy_secret_prefix: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("naap:database:PasswordRotation", name, None, opts)
        archive = lambda_archive(settings, server)
        master_arn = server.master_secret_arn
        assert master_arn is not None  # an rds server (see IdentitySecrets)
        assert server.client_security_group_id is not None
        vpc_id = server.vpc_id
        subnet_ids = server.subnet_ids
        client_group_id = server.client_security_group_id
        tags = stack_tags(settings.stack)
        child = pulumi.ResourceOptions(parent=self)
        scope = aws_scope(self)
        region = scope.region
        account = scope.account

        https_group = aws.ec2.SecurityGroup(
            f"{name}-lambda",
            description=f"naap-db {settings.stack} rotation Lambda: HTTPS to Secrets Manager",
            vpc_id=vpc_id,
            tags=tags,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-lambda-https",
            security_group_id=https_group.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            cidr_ipv4="0.0.0.0/0",
            description="Secrets Manager API (through a NAT gateway or a VPC endpoint)",
            tags=tags,
            opts=child,
        )

        role = aws.iam.Role(
            f"{name}-lambda",
            description=f"naap-db {settings.stack}: rotates the login secrets",
            assume_role_policy=account.apply(
                lambda account_id: assumed_by("lambda.amazonaws.com", account_id)
            ),
            tags=tags,
            opts=child,
        )
        vpc_access = aws.iam.RolePolicyAttachment(
            f"{name}-lambda-vpc",
            role=role.name,
            policy_arn=scope.partition.apply(lambda p: f"arn:{p}:iam::aws:{VPC_EXECUTION_POLICY}"),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-lambda",
            description=f"naap-db {settings.stack}: alternating-login password rotation",
            runtime=LAMBDA_RUNTIME,
            architectures=["x86_64"],
            handler=LAMBDA_HANDLER,
            code=pulumi.FileArchive(str(archive)),
            role=role.arn,
            timeout=LAMBDA_TIMEOUT_SECONDS,
            memory_size=LAMBDA_MEMORY_MB,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(subnet_ids),
                security_group_ids=[client_group_id, https_group.id],
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    ENDPOINT_VARIABLE: region.apply(
                        lambda r: f"https://secretsmanager.{r}.amazonaws.com"
                    ),
                    # What the rotation trusts, since a writer of one
                    # identity secret can change everything in it (naapdb/trust.py).
                    trust.DATABASE_ENDPOINT_VARIABLE: database_endpoint(server),
                    trust.MASTER_ARN_VARIABLE: master_arn,
                    # RDS Proxy's login secrets follow each rotation.
                    **(
                        {proxy_credentials.PROXY_SECRETS_VARIABLE: proxy_secret_prefix}
                        if proxy_secret_prefix
                        else {}
                    ),
                }
            ),
            tags=tags,
            # Creating a function in a VPC checks that its role may create
            # network interfaces, which the attachment grants.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vpc_access]),
        )

        # One permission for the stack's secrets, not one per secret: a
        # resource per identity is a resource per plugin (issue 8's budget
        # is 20). Lambda compares SourceArn with StringLike, so the pattern
        # admits Secrets Manager invoking it for secrets of this account and
        # region named naap-db/<stack>/..., nothing else.
        secrets_pattern = scope.secrets(secret_name(settings.stack, "*"))
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="secretsmanager.amazonaws.com",
            source_account=account,
            source_arn=secrets_pattern,
            opts=child,
        )
        # What the function may touch: secrets of this stack's names that
        # are set to rotate with this very function (AWS's own rotation
        # templates scope the same way). Listing each secret's ARN instead
        # made this policy, and so every schedule waiting for it, depend on
        # every secret: the SDK's dependency-cycle check then walked all of
        # them once per schedule, quadratic in the catalogue.
        policy = aws.iam.RolePolicy(
            f"{name}-lambda-secrets",
            role=role.id,
            policy=pulumi.Output.all(
                secrets_pattern,
                function.arn,
                master_arn,
                scope.secrets(f"{proxy_secret_prefix}*") if proxy_secret_prefix else None,
            ).apply(
                lambda values: rotation_policy(
                    values[0],
                    function_arn=values[1],
                    master_arn=values[2],
                    proxy_secrets_pattern=values[3],
                )
            ),
            opts=child,
        )
        for identity in sorted(secret_arns):
            aws.secretsmanager.SecretRotation(
                f"{name}-{identity}",
                secret_id=secret_arns[identity],
                rotation_lambda_arn=function.arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=settings.credentials.rotation_days,
                ),
                # Switching rotation on runs testSecret, which logs in: the
                # logins must exist, and the function may read the secret,
                # first. The first rotation is scheduled.
                rotate_immediately=False,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[permission, policy, *ready_for(identity)]
                ),
            )
        self.function_arn = function.arn
        self.database_endpoint = database_endpoint(server)
        self.alarm_topic_arn = rotation_alarms(
            name, settings, function, account, secrets_pattern, tags, self
        )
        self.register_outputs(
            {"function_arn": self.function_arn, "alarm_topic_arn": self.alarm_topic_arn}
        )


def database_endpoint(server: DatabaseServer) -> pulumi.Output[str]:
    """`host:port/dbname` of the server (the RDS instance's endpoint): the
    only place the rotation may send credentials."""
    return pulumi.Output.all(server.host, server.port, server.database).apply(
        lambda values: f"{values[0]}:{int(values[1])}/{values[2]}"
    )


def rotation_policy(
    secrets_pattern: str,
    *,
    function_arn: str,
    master_arn: str,
    proxy_secrets_pattern: str | None = None,
) -> str:
    """The Lambda's inline policy: the four steps on the secrets named by
    `secrets_pattern` whose rotation function is `function_arn` (a secret
    of another stack, or of this stack's names but not rotated by this
    function, is out of reach), a read of the master secret, and random
    passwords (not resource-scoped); with RDS Proxy, writing the proxy's
    login secrets (`naapdb.proxy_credentials`), which no rotation schedule
    names, so the condition above cannot cover them."""
    proxy = (
        [
            {
                "Sid": "KeepTheProxyLoginSecretsCurrent",
                "Effect": "Allow",
                "Action": ["secretsmanager:PutSecretValue"],
                "Resource": proxy_secrets_pattern,
            }
        ]
        if proxy_secrets_pattern
        else []
    )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RotateTheLoginSecrets",
                    "Effect": "Allow",
                    "Action": list(ROTATION_ACTIONS),
                    "Resource": secrets_pattern,
                    "Condition": {
                        "StringEquals": {ROTATION_FUNCTION_CONDITION: function_arn},
                    },
                },
                {
                    "Sid": "ReadTheMasterSecret",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue"],
                    "Resource": [master_arn],
                },
                {
                    "Sid": "GeneratePasswords",
                    "Effect": "Allow",
                    "Action": ["secretsmanager:GetRandomPassword"],
                    "Resource": "*",
                },
                *proxy,
            ],
        }
    )


def lambda_archive(settings: StackSettings, server: DatabaseServer) -> Path:
    """The built zip of the rotation Lambda: `naap-db:credentials.lambdaArchive`,
    else $NAAPDB_ROTATION_LAMBDA_ZIP, else one the program builds itself
    (components/lambda_build.py). Stops the program when a named zip is missing."""
    source, configured = "naap-db:credentials.lambdaArchive", settings.credentials.lambda_archive
    if not configured and os.environ.get(ARCHIVE_VARIABLE):
        source, configured = ARCHIVE_VARIABLE, os.environ[ARCHIVE_VARIABLE]
    if not configured:
        return build_default_archive(PROJECT_ROOT, server.ca_bundle)
    path = Path(configured)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    if not path.is_file():
        raise pulumi.RunError(
            f"{source}: {configured} does not exist; build the rotation Lambda first with "
            f"`python {BUILD_SCRIPT}` (it writes {DEFAULT_ARCHIVE})"
        )
    return path

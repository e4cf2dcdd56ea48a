"""CI's side of the AWS account, as plain data: the five roles GitHub's
workflows assume through OIDC, whom each trusts (the token's `sub`, one
environment or `main`), and what each may do; the state bucket's and the prod
secrets key's policies. `components/ci_account.py` declares them
(`ci-aws/`, a Pulumi program an admin runs once); docs/ci.md is the prose.

Why the subjects are what they are: a workflow file is code a pull request
can change, so the guard is the trust policy, never the workflow. Only an
environment with required reviewers (`preview-*`, `production`), or with
deployments from `main` only (`dev`, `drift-prod`), or `main` itself, is
trusted; a `pull_request` subject never is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from naapdb.errors import ConfigError

NAMESPACE = "naap-db-ci"
OIDC_HOST = "token.actions.githubusercontent.com"
OIDC_AUDIENCE = "sts.amazonaws.com"
REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class CiSettings:
    """`naap-db-ci:*`: which repository's workflows, and where state lives."""

    repository: str
    state_bucket: str
    state_prefix: str = "naap-db"
    project: str = "naap-db"
    dev_stack: str = "dev"
    prod_stack: str = "prod"
    prod_key_alias: str = "alias/naap-db-prod"
    oidc_provider_arn: str | None = None
    """An account has one provider per URL: name an existing one, or the
    program creates it."""

    @property
    def backend_url(self) -> str:
        """What the workflows' PULUMI_BACKEND_URL secret holds."""
        return f"s3://{self.state_bucket}/{self.state_prefix}"


@dataclass(frozen=True)
class CiRole:
    """One role a workflow job assumes."""

    key: str
    """Stable resource name, e.g. `prod-preview`."""
    secret: str
    """The GitHub secret holding its ARN (docs/ci.md)."""
    subjects: tuple[str, ...]
    """`sub` claims after `repo:OWNER/REPO:`, matched exactly."""
    stack: str
    """`dev` or `prod`: whose state it reaches."""
    access: str
    """`preview` (read state, write locks), `drift` (preview plus reading the
    live resources), `deploy` (read and write state, manage resources)."""
    description: str


ROLES: tuple[CiRole, ...] = (
    CiRole("dev-preview", "AWS_DEV_PREVIEW_ROLE_ARN", ("environment:preview-dev",), "dev",
           "preview", "a pull request's dev preview: reads dev's state"),
    CiRole("dev-deploy", "AWS_DEV_DEPLOY_ROLE_ARN", ("environment:dev",), "dev", "deploy",
           "pulumi up on dev and the nightly dev check"),
    CiRole("prod-preview", "AWS_PREVIEW_ROLE_ARN",
           ("environment:preview-prod", "ref:refs/heads/main"), "prod", "preview",
           "an approved pull request's prod preview and the prod plan: reads and decrypts "
           "prod's state"),
    CiRole("prod-drift", "AWS_DRIFT_ROLE_ARN", ("environment:drift-prod",), "prod", "drift",
           "the nightly prod check: refreshes from the live resources, reads naap_readonly's "
           "secret"),
    CiRole("prod-deploy", "AWS_DEPLOY_ROLE_ARN", ("environment:production",), "prod", "deploy",
           "pulumi up on prod, after a production reviewer approved the plan"),
)  # fmt: skip


def parse_ci_settings(raw: Mapping[str, Any]) -> CiSettings:
    """Validate `naap-db-ci:*`; one ConfigError naming the key."""
    known = {
        "repository", "stateBucket", "statePrefix", "project", "devStack", "prodStack",
        "prodKeyAlias", "oidcProviderArn",
    }  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{NAMESPACE}:{unknown[0]}", f"is not a key; use one of {sorted(known)}")
    values: dict[str, Any] = {}
    for key in known:
        if key in raw:
            value = raw[key]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{NAMESPACE}:{key}", "must be a non-empty string")
            values[key] = value.strip()
    for required in ("repository", "stateBucket"):
        if required not in values:
            raise ConfigError(f"{NAMESPACE}:{required}", "is required")
    if not REPOSITORY.fullmatch(values["repository"]):
        raise ConfigError(
            f"{NAMESPACE}:repository", f"{values['repository']!r} is not OWNER/NAME on GitHub"
        )
    if not BUCKET.fullmatch(values["stateBucket"]) or ".." in values["stateBucket"]:
        raise ConfigError(
            f"{NAMESPACE}:stateBucket", f"{values['stateBucket']!r} is not an S3 bucket name"
        )
    if not values.get("prodKeyAlias", "alias/").startswith("alias/"):
        raise ConfigError(f"{NAMESPACE}:prodKeyAlias", "must start with alias/")
    arn = values.get("oidcProviderArn")
    if arn is not None and (not arn.startswith("arn:") or OIDC_HOST not in arn):
        raise ConfigError(
            f"{NAMESPACE}:oidcProviderArn", f"must be the ARN of the {OIDC_HOST} provider"
        )
    return CiSettings(
        repository=values["repository"],
        state_bucket=values["stateBucket"],
        state_prefix=values.get("statePrefix", "naap-db").strip("/"),
        project=values.get("project", "naap-db"),
        dev_stack=values.get("devStack", "dev"),
        prod_stack=values.get("prodStack", "prod"),
        prod_key_alias=values.get("prodKeyAlias", "alias/naap-db-prod"),
        oidc_provider_arn=arn,
    )


def subject_claims(role: CiRole, repository: str) -> list[str]:
    return [f"repo:{repository}:{subject}" for subject in role.subjects]


def trust_policy(role: CiRole, provider_arn: str, repository: str) -> dict[str, Any]:
    """GitHub's OIDC tokens for this repository and the role's subjects only
    (StringEquals: no wildcard reaches another branch or a pull request)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GitHubActions",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{OIDC_HOST}:aud": OIDC_AUDIENCE,
                        f"{OIDC_HOST}:sub": subject_claims(role, repository),
                    }
                },
            }
        ],
    }


@dataclass(frozen=True)
class Account:
    """Where the policies point: partition, region, account, and the ARNs
    of what this program creates."""

    partition: str
    region: str
    account: str
    bucket_arn: str
    prod_key_arn: str


def _state(settings: CiSettings, account: Account, stack: str) -> dict[str, list[str]]:
    """The S3 objects of one stack in Pulumi's DIY backend layout."""
    base = f"{account.bucket_arn}/{settings.state_prefix}/.pulumi"
    project = settings.project
    return {
        "read": [
            f"{base}/meta.yaml",
            f"{base}/stacks/{project}/{stack}.json",
            f"{base}/stacks/{project}/{stack}.json.*",
        ],
        "locks": [f"{base}/locks/*/{project}/{stack}/*"],
        "write": [
            f"{base}/stacks/{project}/{stack}.json",
            f"{base}/stacks/{project}/{stack}.json.*",
            f"{base}/history/{project}/{stack}/*",
            f"{base}/backups/{project}/{stack}/*",
        ],
    }


def permissions_policy(role: CiRole, settings: CiSettings, account: Account) -> dict[str, Any]:
    """What the role may do: its stack's state only, prod's key only for
    prod's roles, and the live resources only for drift and deploy."""
    state = _state(settings, account, role.stack)
    arn = f"arn:{account.partition}"
    region_account = f"{account.region}:{account.account}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ListState",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": account.bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{settings.state_prefix}/.pulumi/*"]}},
        },
        {
            "Sid": "ReadState",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": state["read"],
        },
        {
            "Sid": "Locks",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": state["locks"],
        },
    ]
    if role.access == "deploy":
        statements.append(
            {
                "Sid": "WriteState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": state["write"],
            }
        )
    if role.stack == "prod":
        decrypt = ["kms:Decrypt", "kms:DescribeKey"]
        if role.access == "deploy":
            decrypt += ["kms:Encrypt", "kms:GenerateDataKey"]
        statements.append(
            {"Sid": "ProdSecretsKey", "Effect": "Allow", "Action": decrypt,
             "Resource": account.prod_key_arn}
        )  # fmt: skip
        # The program reads the RDS master secret at every run.
        statements.append(
            {
                "Sid": "ReadMasterSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": f"{arn}:secretsmanager:{region_account}:secret:rds!*",
            }
        )
    if role.access == "drift":
        statements += _drift_statements(settings, arn, region_account)
    if role.access == "deploy" and role.stack == "prod":
        statements += _prod_deploy_statements(settings, arn, region_account)
    return {"Version": "2012-10-17", "Statement": statements}


def _drift_statements(settings: CiSettings, arn: str, region_account: str) -> list[dict[str, Any]]:
    """A refresh reads every resource of the stack; verify reads one secret."""
    prefix = f"{arn}:secretsmanager:{region_account}:secret:naap-db/{settings.prod_stack}/"
    return [
        {
            "Sid": "ReadLiveResources",
            "Effect": "Allow",
            "Action": [
                "rds:Describe*",
                "rds:ListTagsForResource",
                "ec2:Describe*",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListRolePolicies",
                "lambda:GetFunction",
                "lambda:GetPolicy",
                "lambda:ListTags",
                "lambda:GetFunctionCodeSigningConfig",
                "logs:DescribeLogGroups",
                "logs:ListTagsForResource",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
                "events:DescribeRule",
                "events:ListTargetsByRule",
                "events:ListTagsForResource",
                "sns:GetTopicAttributes",
                "sns:ListTagsForResource",
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetResourcePolicy",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ReadTheReadOnlyLogin",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": f"{prefix}naap_readonly-*",
        },
    ]


def _prod_deploy_statements(
    settings: CiSettings, arn: str, region_account: str
) -> list[dict[str, Any]]:
    """pulumi up on prod: the instance and its network pieces, the identity
    secrets, the rotation Lambda and its alarms, the roles the program names
    `naap-*` (and passing them to RDS and Lambda), nothing else of IAM."""
    account = region_account.split(":")[1]
    return [
        {
            "Sid": "ManageTheDatabase",
            "Effect": "Allow",
            "Action": [
                "rds:*",
                "ec2:Describe*",
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:ModifySecurityGroupRules",
                "ec2:UpdateSecurityGroupRuleDescriptions*",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                "logs:*",
                "cloudwatch:*",
                "events:*",
                "sns:*",
                "lambda:*",
                "kms:CreateKey",
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:PutKeyPolicy",
                "kms:EnableKeyRotation",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:TagResource",
                "kms:ScheduleKeyDeletion",
            ],
            "Resource": "*",
        },
        {
            "Sid": "TheIdentitySecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:*",
            "Resource": [
                f"{arn}:secretsmanager:{region_account}:secret:naap-db/{settings.prod_stack}/*",
                f"{arn}:secretsmanager:{region_account}:secret:rds!*",
            ],
        },
        {
            "Sid": "RandomPasswords",
            "Effect": "Allow",
            "Action": "secretsmanager:GetRandomPassword",
            "Resource": "*",
        },
        {
            "Sid": "TheProgramsRoles",
            "Effect": "Allow",
            "Action": ["iam:*Role*", "iam:PassRole", "iam:TagRole", "iam:UntagRole"],
            "Resource": f"{arn}:iam::{account}:role/naap-*",
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"{arn}:iam::{account}:role/aws-service-role/*",
        },
    ]


def bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """The state bucket refuses every request that is not over TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def prod_key_policy(account: Account, role_arns: Mapping[str, str]) -> dict[str, Any]:
    """Prod's secrets key: the account administers it; of CI's roles only
    prod's may use it (decrypt; encrypt for the deploy role)."""
    root = f"arn:{account.partition}:iam::{account.account}:root"
    prod_roles = [r for r in ROLES if r.stack == "prod"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "ProdRolesDecrypt",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(role_arns[r.key] for r in prod_roles)},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
            },
            {
                "Sid": "DeployEncrypts",
                "Effect": "Allow",
                "Principal": {"AWS": role_arns["prod-deploy"]},
                "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                "Resource": "*",
            },
        ],
    }

"""`CiAccount`: CI's side of the AWS account (the `ci-aws/` program, run
once by an admin): GitHub's OIDC provider, the five roles the workflows
assume (`naapdb/ci_roles.py` says whom each trusts and what it may do), the
versioned, encrypted, private state bucket, and prod's secrets key
(`alias/naap-db-prod`, which `Pulumi.prod.yaml`'s secrets provider names).

The bucket and the key are protected: losing either loses every stack's
state or prod's secrets. Outputs: each role's ARN under the GitHub secret
that holds it, and the `PULUMI_BACKEND_URL` to store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from naapdb import ci_roles
from naapdb.ci_roles import ROLES, Account, CiRole, CiSettings
from naapdb.errors import ConfigError

# GitHub's OIDC issuer certificates (AWS verifies GitHub's tokens with its
# own trusted CAs and ignores these, but the API has asked for them).
GITHUB_THUMBPRINTS = (
    "6938fd4d98bab03faadb97b34396831e3780aea1",
    "1c58a3a8518e8759bf075b76b750d4f2df264fcd",
)


def ci_settings() -> CiSettings:
    """`naap-db-ci:*` from the stack's config, validated."""
    config = pulumi.Config(ci_roles.NAMESPACE)
    keys = ("repository", "stateBucket", "statePrefix", "project", "devStack", "prodStack",
            "prodKeyAlias", "oidcProviderArn")  # fmt: skip
    raw = {key: config.get(key) for key in keys if config.get(key) is not None}
    try:
        return ci_roles.parse_ci_settings(raw)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


class CiAccount(pulumi.ComponentResource):
    """The OIDC provider, the five CI roles, the state bucket and prod's key."""

    role_arns: dict[str, pulumi.Output[str]]
    """GitHub secret name -> role ARN."""

    def __init__(
        self, name: str, settings: CiSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("naap:ci:CiAccount", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=True)
        tags = {"Project": "naap-db", "Stack": "ci", "ManagedBy": "pulumi"}
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))

        provider_arn: pulumi.Output[str]
        if settings.oidc_provider_arn:
            provider_arn = pulumi.Output.from_input(settings.oidc_provider_arn)
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github",
                url=f"https://{ci_roles.OIDC_HOST}",
                client_id_lists=[ci_roles.OIDC_AUDIENCE],
                thumbprint_lists=list(GITHUB_THUMBPRINTS),
                tags=tags,
                opts=child,
            )
            provider_arn = provider.arn

        bucket = aws.s3.Bucket(f"{name}-state", bucket=settings.state_bucket, tags=tags, opts=kept)
        aws.s3.BucketVersioning(
            f"{name}-state",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=kept,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-state",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=kept,
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-state",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=kept,
        )
        aws.s3.BucketPolicy(
            f"{name}-state",
            bucket=bucket.id,
            policy=bucket.arn.apply(lambda arn: json.dumps(ci_roles.bucket_policy(arn))),
            opts=kept,
        )

        roles: dict[str, aws.iam.Role] = {}
        for role in ROLES:
            roles[role.key] = aws.iam.Role(
                f"{name}-{role.key}",
                name=f"naap-db-ci-{role.key}",
                description=f"naap-db CI: {role.description}",
                assume_role_policy=provider_arn.apply(_trust(role, settings.repository)),
                max_session_duration=3600,
                tags=tags,
                opts=child,
            )
        role_arns = pulumi.Output.all(**{key: role.arn for key, role in roles.items()})

        key = aws.kms.Key(
            f"{name}-prod-secrets",
            description=f"naap-db {settings.prod_stack}: the stack's secrets provider",
            enable_key_rotation=True,
            policy=pulumi.Output.all(
                identity.account_id, partition.partition, region, role_arns
            ).apply(
                lambda values: json.dumps(ci_roles.prod_key_policy(_account(values), values[3]))
            ),
            tags=tags,
            opts=kept,
        )
        aws.kms.Alias(
            f"{name}-prod-secrets",
            name=settings.prod_key_alias,
            target_key_id=key.key_id,
            opts=kept,
        )
        account = pulumi.Output.all(
            identity.account_id, partition.partition, region, bucket.arn, key.arn
        ).apply(
            lambda values: Account(
                partition=values[1],
                region=values[2],
                account=values[0],
                bucket_arn=values[3],
                prod_key_arn=values[4],
            )
        )
        for role in ROLES:
            aws.iam.RolePolicy(
                f"{name}-{role.key}",
                role=roles[role.key].id,
                policy=account.apply(_permissions(role, settings)),
                opts=child,
            )
        self.role_arns = {role.secret: roles[role.key].arn for role in ROLES}
        self.backend_url = settings.backend_url
        self.prod_key_arn = key.arn
        self.register_outputs(
            {"role_arns": self.role_arns, "backend_url": self.backend_url, "prod_key": key.arn}
        )


def _trust(role: CiRole, repository: str) -> Callable[[str], str]:
    """The role's trust policy, from the OIDC provider's ARN."""
    return lambda provider_arn: json.dumps(ci_roles.trust_policy(role, provider_arn, repository))


def _permissions(role: CiRole, settings: CiSettings) -> Callable[[Account], str]:
    """The role's inline policy, from where things are."""
    return lambda where: json.dumps(ci_roles.permissions_policy(role, settings, where))


def _account(values: list[Any]) -> Account:
    """Enough of an `Account` for the key policy (no bucket or key ARN yet)."""
    return Account(
        partition=values[1], region=values[2], account=values[0], bucket_arn="", prod_key_arn=""
    )

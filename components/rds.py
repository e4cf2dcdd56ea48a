"""The pieces of the RDS server that are not the instance itself: its
parameters, its CloudWatch log groups, the enhanced-monitoring role, the
final snapshot's name, the ingress rules and the CA bundle `pulumi up`
verifies the server's certificate with. `components/server.py` declares the
instance from them.

Why each exists (issue 16):

- The log groups are declared, not left for RDS to create: RDS creates
  `/aws/rds/instance/<id>/<log>` with no retention (kept forever) and no
  key. Declared first, with a retention and optionally a KMS key, they are
  the ones RDS writes to.
- `log_connections`/`log_disconnections`: before a rotation makes the idle
  login current, ops can see who still uses the previous one.
- The final snapshot's name carries a random suffix: a second instance of
  the same identifier (destroy, then up again) must not collide with the
  first one's final snapshot.
- The CA bundle: `sslmode=verify-full` checks the server's certificate and
  host name, so a server on the path cannot pose as the database to the
  admin connection, which holds the master password.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from naapdb import rds_ca
from naapdb.rds_ca import CheckedBundle
from naapdb.settings import RdsServer

POSTGRES_PORT = 5432
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The instance's parameter group: clients must use TLS, passwords are stored
# as SCRAM verifiers (and every password naap-db sends is one already, so
# logging DDL logs no password), every DDL statement is logged, and so is
# every connection and disconnection.
RDS_PARAMETERS = {
    "rds.force_ssl": "1",
    "password_encryption": "scram-sha-256",
    "log_statement": "ddl",
    "log_connections": "1",
    "log_disconnections": "1",
}
RDS_LOG_EXPORTS = ("postgresql", "upgrade")
# Names another RDS CA bundle than the committed one (naapdb/rds_ca.py).
CA_BUNDLE_VARIABLE = "NAAPDB_RDS_CA_BUNDLE"
SERVER_KEY = "naap-db:server"
MONITORING_POLICY = "policy/service-role/AmazonRDSEnhancedMonitoringRole"


def log_group_name(identifier: str, log: str) -> str:
    """The group RDS exports an instance's log to."""
    return f"/aws/rds/instance/{identifier}/{log}"


def log_groups(
    name: str,
    identifier: str,
    server: RdsServer,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> list[aws.cloudwatch.LogGroup]:
    """One group per exported log, with the configured retention and key."""
    return [
        aws.cloudwatch.LogGroup(
            f"{name}-logs-{log}",
            name=log_group_name(identifier, log),
            retention_in_days=server.log_retention_days,
            kms_key_id=server.log_kms_key_id,
            tags=tags,
            opts=opts,
        )
        for log in RDS_LOG_EXPORTS
    ]


def monitoring_role(
    name: str, server: RdsServer, tags: dict[str, str], opts: pulumi.ResourceOptions
) -> tuple[pulumi.Input[str] | None, list[pulumi.Resource]]:
    """The enhanced-monitoring role's ARN (configured, or created here with
    AWS's managed policy) and what the instance must wait for; (None, [])
    when enhanced monitoring is off."""
    if server.monitoring_interval == 0:
        return None, []
    if server.monitoring_role_arn:
        return server.monitoring_role_arn, []
    partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=opts.parent))
    role = aws.iam.Role(
        f"{name}-monitoring",
        description="naap-db: RDS enhanced monitoring",
        assume_role_policy=account_id(opts.parent).apply(
            lambda account: assumed_by("monitoring.rds.amazonaws.com", account)
        ),
        tags=tags,
        opts=opts,
    )
    attachment = aws.iam.RolePolicyAttachment(
        f"{name}-monitoring",
        role=role.name,
        policy_arn=partition.partition.apply(lambda p: f"arn:{p}:iam::aws:{MONITORING_POLICY}"),
        opts=opts,
    )
    return role.arn, [attachment]


def final_snapshot_name(
    name: str, identifier: str, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """`<identifier>-final-<8 hex>`: unique per instance identity (a new
    identifier draws a new suffix), stable across updates."""
    suffix = random.RandomId(
        f"{name}-final-snapshot", byte_length=4, keepers={"identifier": identifier}, opts=opts
    )
    return pulumi.Output.concat(identifier, "-final-", suffix.hex)


def ca_bundle(server: RdsServer) -> CheckedBundle:
    """The RDS CA bundle the admin connection, the push and the rotation
    Lambda verify the server with: the committed one, unless `caBundle` or
    $NAAPDB_RDS_CA_BUNDLE names another, which must have the pinned digest
    or be trusted explicitly (`trustCaBundle`, `NAAPDB_TRUST_CA_BUNDLE=1`),
    and then every preview says so. Anything else stops the program."""
    if server.ca_bundle:
        source, configured = f"{SERVER_KEY}.caBundle", server.ca_bundle
        trusted, flag = server.trust_ca_bundle, f"{SERVER_KEY}.trustCaBundle"
    elif os.environ.get(CA_BUNDLE_VARIABLE, "").strip():
        source, configured = CA_BUNDLE_VARIABLE, os.environ[CA_BUNDLE_VARIABLE].strip()
        trusted, flag = rds_ca.trusted_by_environment(), f"{rds_ca.TRUST_VARIABLE}=1"
    else:
        committed = rds_ca.committed_bundle()
        if not committed.pinned:
            raise pulumi.RunError(
                f"{committed.path} does not have its pinned sha256 ({rds_ca.BUNDLE_SHA256}); "
                "restore it (git checkout naapdb/rds-ca-bundle.pem) or rebuild it and its pin "
                "with scripts/refresh-rds-ca.py"
            )
        return committed
    path = Path(configured).expanduser()
    path = path if path.is_absolute() else PROJECT_ROOT / path
    try:
        checked = rds_ca.check_bundle(path, source, trusted, flag)
    except rds_ca.UntrustedBundle as error:
        raise pulumi.RunError(str(error)) from None
    if notice := checked.notice(flag):
        pulumi.log.warn(notice)
    return checked


def rds_ingress(
    server: RdsServer, client_group_id: pulumi.Input[str]
) -> list[aws.ec2.SecurityGroupIngressArgs]:
    """Port 5432 from the configured CIDRs and security groups, and from the
    stack's client group; nothing else."""
    ipv4 = [cidr for cidr in server.allowed_cidrs if ":" not in cidr]
    ipv6 = [cidr for cidr in server.allowed_cidrs if ":" in cidr]
    rules = []
    if ipv4 or ipv6:
        rules.append(
            aws.ec2.SecurityGroupIngressArgs(
                protocol="tcp",
                from_port=POSTGRES_PORT,
                to_port=POSTGRES_PORT,
                cidr_blocks=ipv4 or None,
                ipv6_cidr_blocks=ipv6 or None,
                description="PostgreSQL from allowed networks",
            )
        )
    rules.append(
        aws.ec2.SecurityGroupIngressArgs(
            protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            security_groups=[*server.allowed_security_group_ids, client_group_id],
            description="PostgreSQL from allowed security groups",
        )
    )
    return rules


def assumed_by(service: str, account: str) -> str:
    """An IAM role's trust policy letting one AWS service (e.g.
    `lambda.amazonaws.com`) assume it, on behalf of this account only
    (`aws:SourceAccount`): no other account's use of that service can make
    it act with this role (the confused deputy)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


@dataclass(frozen=True)
class AwsScope:
    """The partition, region and account the stack deploys to (invokes), for
    ARNs and IAM patterns scoped to them."""

    partition: pulumi.Output[str]
    region: pulumi.Output[str]
    account: pulumi.Output[str]

    def secrets(self, name_pattern: str) -> pulumi.Output[str]:
        """`arn:...:secretsmanager:<region>:<account>:secret:<name_pattern>`."""
        return pulumi.Output.all(self.partition, self.region, self.account).apply(
            lambda values: (
                f"arn:{values[0]}:secretsmanager:{values[1]}:{values[2]}:secret:{name_pattern}"
            )
        )


def aws_scope(parent: pulumi.Resource) -> AwsScope:
    options = pulumi.InvokeOutputOptions(parent=parent)
    return AwsScope(
        partition=aws.get_partition_output(opts=options).partition,
        region=aws.get_region_output(opts=options).region,
        account=aws.get_caller_identity_output(opts=options).account_id,
    )


def security_group(
    name: str,
    name_prefix: str,
    description: str,
    server: RdsServer,
    client_group_id: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A group admitting 5432 from the allowed networks and the client group."""
    return aws.ec2.SecurityGroup(
        name,
        name_prefix=name_prefix,
        description=description,
        vpc_id=server.vpc_id,
        ingress=rds_ingress(server, client_group_id),
        tags=tags,
        opts=opts,
    )


def clients_may_reach(
    name: str,
    client_group_id: pulumi.Input[str],
    target_group_id: pulumi.Input[str],
    what: str,
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.vpc.SecurityGroupEgressRule:
    """The client group's egress to `what` (a group) on 5432."""
    return aws.vpc.SecurityGroupEgressRule(
        name,
        security_group_id=client_group_id,
        referenced_security_group_id=target_group_id,
        ip_protocol="tcp",
        from_port=POSTGRES_PORT,
        to_port=POSTGRES_PORT,
        description=f"PostgreSQL on the naap-db {what}",
        tags=tags,
        opts=opts,
    )


def account_id(parent: pulumi.Resource | None) -> pulumi.Output[str]:
    """The account the stack deploys into."""
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=parent)).account_id

"""`ReadReplicas`: RDS read replicas of the prod instance (`naap-db:replicas`,
`naapdb.replicas`).

Each replica copies the instance (`replicate_source_db`): the same
PostgreSQL, storage encrypted with the same key, the same parameter group
(TLS forced, SCRAM, DDL logged, the same max_connections, so the budget
holds there too), the same security group and subnet group, its own log
groups with the stack's retention, and protection like the primary's:
`protect` and deletion protection on. A replica keeps no final snapshot
(RDS takes none of a replica; the primary's backups hold the data).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.rds import RDS_LOG_EXPORTS, log_groups
from components.server import PERFORMANCE_INSIGHTS_DAYS, DatabaseServer, physical_name, stack_tags
from naapdb.settings import RdsServer, StackSettings


class ReadReplicas(pulumi.ComponentResource):
    """The replicas and their endpoints."""

    endpoints: list[pulumi.Output[str]]
    """Each replica's address, in config order."""
    port: pulumi.Output[int]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("naap:database:ReadReplicas", name, None, opts)
        primary = settings.server
        assert isinstance(primary, RdsServer) and server.instance is not None
        source = server.instance
        base = physical_name(settings.stack)
        tags = stack_tags(settings.stack)
        child = pulumi.ResourceOptions(parent=self, protect=settings.production)
        self.endpoints = []
        for number, replica in enumerate(settings.replicas, start=1):
            identifier = f"{base}-replica-{number}"
            logs = log_groups(f"{name}-{number}", identifier, primary, tags, child)
            instance = aws.rds.Instance(
                f"{name}-{number}",
                identifier=identifier,
                # Same region: the source's identifier; RDS puts the replica
                # in the source's subnet group.
                replicate_source_db=source.identifier,
                instance_class=replica.instance_class or primary.instance_class,
                availability_zone=replica.availability_zone,
                storage_type="gp3",
                storage_encrypted=True,
                kms_key_id=primary.kms_key_id,
                max_allocated_storage=primary.max_allocated_storage,
                parameter_group_name=source.parameter_group_name,
                vpc_security_group_ids=source.vpc_security_group_ids,
                publicly_accessible=False,
                multi_az=False,
                deletion_protection=True,
                skip_final_snapshot=True,
                copy_tags_to_snapshot=True,
                performance_insights_enabled=primary.performance_insights,
                performance_insights_retention_period=(
                    PERFORMANCE_INSIGHTS_DAYS if primary.performance_insights else None
                ),
                enabled_cloudwatch_logs_exports=list(RDS_LOG_EXPORTS),
                monitoring_interval=primary.monitoring_interval,
                monitoring_role_arn=source.monitoring_role_arn,
                auto_minor_version_upgrade=True,
                tags={**tags, "Role": "read-replica"},
                opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=[*logs]),
            )
            self.endpoints.append(instance.address)
        self.port = server.port
        self.register_outputs({"endpoints": self.endpoints})

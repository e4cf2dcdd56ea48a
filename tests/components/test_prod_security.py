"""Issue 16 under mocks, on the whole prod program with the committed stack
files: the instance's log groups (retention, KMS key, created first),
connection logging, name prefixes (create before delete), a unique final
snapshot, backup and maintenance windows, enhanced monitoring, verify-full
for the admin provider, what the rotation Lambda trusts, and the alarms a
failed rotation raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb import rds_ca
from naapdb.errors import ConfigError
from naapdb.settings import parse_server
from tests import harness
from tests.harness import ROOT, Run

INSTANCE = "aws:rds/instance:Instance"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PARAMETERS = "aws:rds/parameterGroup:ParameterGroup"
SUBNETS = "aws:rds/subnetGroup:SubnetGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
RANDOM_ID = "random:index/randomId:RandomId"
PROVIDER = "pulumi:providers:postgresql"
FUNCTION = "aws:lambda/function:Function"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
MOCK_ENDPOINT = "naap.abc123.us-east-1.rds.amazonaws.com:5432/naap"
MASTER_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def prod_config(section: str, **extra: Any) -> dict[str, Any]:
    """The committed prod stack's `naap-db:<section>` with `extra` keys."""
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    return {f"naap-db:{section}": {**stack["config"][f"naap-db:{section}"], **extra}}


@pytest.fixture(scope="module")
def prod(lambda_zip: Path) -> Run:
    return harness.run_program("prod")


# --- logs ----------------------------------------------------------------------


def test_the_instance_logs_go_to_declared_groups_with_a_retention(prod: Run) -> None:
    groups = {g.inputs["name"]: g for g in prod.of_type(LOG_GROUP)}
    assert sorted(groups) == [
        "/aws/rds/instance/naap-db-prod/postgresql",
        "/aws/rds/instance/naap-db-prod/upgrade",
    ]
    instance = prod.one(INSTANCE)
    assert instance.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    for group in groups.values():
        assert group.inputs["retentionInDays"] == 30
        assert "kmsKeyId" not in group.inputs
        assert group.protect  # a production stack protects every server resource
        # Created before the instance, or RDS creates them without retention.
        assert group.urn in instance.dependencies


def test_log_retention_and_key_come_from_config() -> None:
    run = harness.run_program(
        "prod", prod_config("server", logRetentionDays=365, logKmsKeyId=KEY_ARN)
    )
    for group in run.of_type(LOG_GROUP):
        assert group.inputs["retentionInDays"] == 365
        assert group.inputs["kmsKeyId"] == KEY_ARN


# --- names, snapshot, windows, monitoring ----------------------------------------


def test_groups_have_name_prefixes_so_a_replacement_is_created_first(prod: Run) -> None:
    prefixes = {
        PARAMETERS: "naap-db-prod-postgres16-",
        SUBNETS: "naap-db-prod-",
    }
    for type_, prefix in prefixes.items():
        resource = prod.one(type_)
        assert resource.inputs["namePrefix"] == prefix
        assert "name" not in resource.inputs
        assert not resource.delete_before_replace
    groups = {g.name: g for g in prod.of_type(SECURITY_GROUP) if "server" in g.name}
    assert groups["naap-server-clients"].inputs["namePrefix"] == "naap-db-prod-clients-"
    assert groups["naap-server-sg"].inputs["namePrefix"] == "naap-db-prod-db-"
    assert not any(g.delete_before_replace or "name" in g.inputs for g in groups.values())


def test_the_final_snapshot_name_is_unique_per_instance(prod: Run) -> None:
    suffix = prod.one(RANDOM_ID)
    assert suffix.inputs["keepers"] == {"identifier": "naap-db-prod"}
    assert prod.one(INSTANCE).inputs["finalSnapshotIdentifier"] == "naap-db-prod-final-0a1b2c3d"


def test_windows_and_enhanced_monitoring_come_from_config() -> None:
    run = harness.run_program(
        "prod",
        prod_config(
            "server",
            backupWindow="03:00-03:30",
            maintenanceWindow="sun:05:00-sun:06:00",
            monitoringInterval=30,
        ),
    )
    instance = run.one(INSTANCE)
    assert instance.inputs["backupWindow"] == "03:00-03:30"
    assert instance.inputs["maintenanceWindow"] == "sun:05:00-sun:06:00"
    assert instance.inputs["monitoringInterval"] == 30
    role = run.one(ROLE, "server-monitoring")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    attachment = run.one(ATTACHMENT, "server-monitoring")
    assert attachment.inputs["policyArn"].endswith(
        ":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )
    assert instance.inputs["monitoringRoleArn"] == role.state["arn"]
    assert attachment.urn in instance.dependencies


def test_a_given_monitoring_role_is_used_as_is() -> None:
    arn = "arn:aws:iam::123456789012:role/rds-monitoring"
    run = harness.run_program(
        "prod", prod_config("server", monitoringInterval=60, monitoringRoleArn=arn)
    )
    assert run.one(INSTANCE).inputs["monitoringRoleArn"] == arn
    assert not [r for r in run.of_type(ROLE) if "monitoring" in r.name]


def test_monitoring_is_off_by_default(prod: Run) -> None:
    assert prod.one(INSTANCE).inputs.get("monitoringInterval", 0) == 0
    assert not [r for r in prod.of_type(ROLE) if "monitoring" in r.name]


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ({"backupWindow": "3:00-4:00"}, "backupWindow", "is not hh24:mi-hh24:mi"),
        ({"backupWindow": "03:00-03:10"}, "backupWindow", "shorter than 30 minutes"),
        ({"maintenanceWindow": "sunday:05:00-sun:06:00"}, "maintenanceWindow", "ddd:hh24:mi"),
        (
            {"backupWindow": "05:30-06:30", "maintenanceWindow": "sun:05:00-sun:06:00"},
            "maintenanceWindow",
            "overlaps the backup window",
        ),
        (
            {"backupWindow": "23:30-00:30", "maintenanceWindow": "mon:00:00-mon:01:00"},
            "maintenanceWindow",
            "overlaps the backup window",
        ),
        ({"monitoringInterval": 7}, "monitoringInterval", "is not one of 0, 1, 5"),
        ({"monitoringRoleArn": "arn:aws:iam::1:role/x"}, "monitoringRoleArn", "is unused"),
        ({"logRetentionDays": 0}, "logRetentionDays", "is not a CloudWatch Logs retention"),
        ({"logKmsKeyId": "alias/logs"}, "logKmsKeyId", "must be a KMS key ARN"),
        ({"caBundle": " "}, "caBundle", "is empty"),
    ],
)
def test_bad_operating_options_name_their_key(
    extra: dict[str, Any], key: str, message: str
) -> None:
    raw = {**prod_config("server")["naap-db:server"], **extra}
    with pytest.raises(ConfigError) as caught:
        parse_server(raw, production=True)
    assert str(caught.value).startswith(f"naap-db:server.{key}: ")
    assert message in str(caught.value)


def test_windows_that_do_not_overlap_are_taken() -> None:
    raw = {
        **prod_config("server")["naap-db:server"],
        "backupWindow": "23:00-00:00",
        "maintenanceWindow": "sun:00:00-sun:00:30",
    }
    server = parse_server(raw, production=True)
    assert server.backup_window == "23:00-00:00"  # type: ignore[union-attr]


# --- TLS -----------------------------------------------------------------------


def test_the_admin_provider_verifies_the_server_against_the_committed_rds_ca(
    prod: Run,
) -> None:
    provider = next(p for p in prod.of_type(PROVIDER) if p.name == "naap-server-admin")
    assert provider.inputs["sslmode"] == "verify-full"
    assert provider.inputs["sslrootcert"] == str(rds_ca.BUNDLE)


def test_a_missing_ca_bundle_names_the_key(tmp_path: Path) -> None:
    absent = tmp_path / "absent.pem"
    run = harness.run_program(
        "prod", prod_config("server", caBundle=str(absent)), raise_errors=False
    )
    assert run.error is not None
    assert str(run.error) == f"naap-db:server.caBundle: {absent} does not exist"
    assert not run.of_type(INSTANCE)


def test_client_urls_name_the_configured_ca_path() -> None:
    run = harness.run_program("prod", prod_config("server", clientSslRootCert="/srv/ca.pem"))
    urls = run.outputs["connection_urls"]
    assert urls and all(
        url.endswith("?sslmode=verify-full&sslrootcert=/srv/ca.pem") for url in urls.values()
    )


# --- rotation: trust and alarms ---------------------------------------------------


def test_the_lambda_is_told_the_endpoint_and_master_secret_it_may_trust(prod: Run) -> None:
    variables = prod.one(FUNCTION).inputs["environment"]["variables"]
    assert variables["NAAPDB_DATABASE_ENDPOINT"] == MOCK_ENDPOINT
    assert variables["NAAPDB_MASTER_SECRET_ARN"] == MASTER_SECRET_ARN
    assert prod.outputs["database_endpoint"] == MOCK_ENDPOINT


def test_a_failed_rotation_raises_an_alarm_to_an_exported_topic(prod: Run) -> None:
    topic = prod.one(TOPIC)
    policy = json.loads(prod.one(TOPIC_POLICY).inputs["policy"])
    principals = policy["Statement"][0]["Principal"]["Service"]
    assert set(principals) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    assert policy["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }
    rule = prod.one(RULE)
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.secretsmanager"]
    assert pattern["detail"]["eventName"] == ["RotationFailed"]
    target = prod.one(TARGET)
    assert target.inputs["rule"] == rule.state["name"]
    alarm = prod.one(ALARM)
    assert alarm.inputs["namespace"] == "AWS/Lambda"
    assert alarm.inputs["metricName"] == "Errors"
    assert alarm.inputs["dimensions"] == {"FunctionName": prod.one(FUNCTION).state["name"]}
    assert alarm.inputs["threshold"] == 1
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    exported = prod.outputs["rotation_alarm_topic_arn"]
    assert exported == topic.state["arn"]
    assert target.inputs["arn"] == exported
    assert alarm.inputs["alarmActions"] == [exported]


def test_a_configured_topic_is_used_instead_of_a_new_one() -> None:
    arn = "arn:aws:sns:us-east-1:123456789012:oncall"
    run = harness.run_program("prod", prod_config("credentials", alarmTopicArn=arn))
    assert not run.of_type(TOPIC)
    assert run.one(TARGET).inputs["arn"] == arn
    assert run.one(ALARM).inputs["alarmActions"] == [arn]
    assert run.outputs["rotation_alarm_topic_arn"] == arn


def test_dev_has_no_alarms_or_log_groups(lambda_zip: Path) -> None:
    run = harness.run_program("dev")
    assert not {TOPIC, RULE, ALARM, LOG_GROUP} & run.types()
    assert "rotation_alarm_topic_arn" not in run.outputs

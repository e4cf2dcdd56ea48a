"""Issue 16 under mocks, on the whole prod program with the committed stack
files: the instance's log groups (retention, KMS key, created first),
connection logging, name prefixes (create before delete), a unique final
snapshot, backup and maintenance windows, enhanced monitoring, verify-full
for the admin provider, what the rotation Lambda trusts, and the alarms a
failed rotation raises."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb import rds_ca
from naapdb.errors import ConfigError
from naapdb.settings import parse_server
from tests import harness
from tests.harness import ROOT, Run
from tests.tlsca import make_ca

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
KMS_KEY = "aws:kms/key:Key"
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


def test_an_unpinned_ca_bundle_is_refused_unless_trusted_out_loud(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21: `caBundle` must be the pinned bundle, or trusted with
    `trustCaBundle`, which every preview then prints."""
    other = make_ca(tmp_path / "ca", ("db.example",)).ca_cert
    run = harness.run_program(
        "prod", prod_config("server", caBundle=str(other)), raise_errors=False
    )
    assert run.error is not None and not run.of_type(INSTANCE)
    message = str(run.error)
    assert message.startswith(f"naap-db:server.caBundle: {other} is not the pinned RDS CA bundle")
    assert "naap-db:server.trustCaBundle" in message and "\n" not in message
    with caplog.at_level(logging.WARNING):
        trusted = harness.run_program(
            "prod", prod_config("server", caBundle=str(other), trustCaBundle=True)
        )
    provider = next(p for p in trusted.of_type(PROVIDER) if p.name == "naap-server-admin")
    assert provider.inputs["sslrootcert"] == str(other)
    assert any(
        "is not the pinned RDS CA bundle" in r.getMessage() and "trustCaBundle" in r.getMessage()
        for r in caplog.records
    )
    # A copy of the committed bundle is the pinned bundle: no flag needed.
    copy = tmp_path / "copy.pem"
    copy.write_bytes(rds_ca.BUNDLE.read_bytes())
    pinned = harness.run_program("prod", prod_config("server", caBundle=str(copy)))
    provider = next(p for p in pinned.of_type(PROVIDER) if p.name == "naap-server-admin")
    assert provider.inputs["sslrootcert"] == str(copy)


def test_the_ca_bundle_variable_is_checked_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_ca(tmp_path / "ca", ("db.example",)).ca_cert
    monkeypatch.setenv("NAAPDB_RDS_CA_BUNDLE", str(other))
    run = harness.run_program("prod", raise_errors=False)
    assert run.error is not None
    assert str(run.error).startswith(f"NAAPDB_RDS_CA_BUNDLE: {other} is not the pinned")
    assert "NAAPDB_TRUST_CA_BUNDLE=1" in str(run.error)
    monkeypatch.setenv("NAAPDB_TRUST_CA_BUNDLE", "1")
    provider = next(
        p for p in harness.run_program("prod").of_type(PROVIDER) if p.name == "naap-server-admin"
    )
    assert provider.inputs["sslrootcert"] == str(other)


def test_trust_without_a_ca_bundle_names_the_key() -> None:
    raw = {**prod_config("server")["naap-db:server"], "trustCaBundle": True}
    with pytest.raises(ConfigError, match=r"^naap-db:server.trustCaBundle: .*caBundle is not set"):
        parse_server(raw, production=True)


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
    # This stack's secrets only, not the whole account's (issue 21).
    assert pattern["detail"]["additionalEventData"] == {
        "SecretId": [
            {"prefix": "arn:aws:secretsmanager:us-east-1:123456789012:secret:naap-db/prod/"}
        ]
    }
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


def test_the_alarm_topic_is_encrypted_with_a_key_its_publishers_may_use(prod: Run) -> None:
    """Issue 21: the topic the stack creates is KMS-encrypted, with a key
    EventBridge and CloudWatch of this account (only) may encrypt with."""
    key = prod.one(KMS_KEY)
    assert prod.one(TOPIC).inputs["kmsMasterKeyId"] == key.state["arn"]
    assert key.inputs["enableKeyRotation"] is True
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    publishers = statements["AlarmPublishers"]
    assert set(publishers["Principal"]["Service"]) == {
        "events.amazonaws.com",
        "cloudwatch.amazonaws.com",
    }
    assert publishers["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert set(publishers["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    assert statements["AccountAdministers"]["Principal"] == {
        "AWS": "arn:aws:iam::123456789012:root"
    }


def test_every_service_role_trusts_its_service_for_this_account_only() -> None:
    """Issue 21: the Lambda's and the enhanced-monitoring role's trust carry
    `aws:SourceAccount`, so no other account's use of the service assumes them."""
    run = harness.run_program("prod", prod_config("server", monitoringInterval=30))
    services = {}
    for role in run.of_type(ROLE):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        services[statement["Principal"]["Service"]] = statement["Condition"]
    assert services == {
        "lambda.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        "monitoring.rds.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
    }

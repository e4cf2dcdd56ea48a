"""Failed rotations page someone.

A failed rotation leaves AWSPENDING on a version, which blocks the next
rotations, while clients keep working on AWSCURRENT: nothing breaks until
the password in use is too old or the next rotation fails too, so nobody
notices. Two signals go to one SNS topic (`naap-db:credentials.alarmTopicArn`,
or one the stack creates and exports as `rotation_alarm_topic_arn`; ops
subscribe their pager or e-mail to it):

- an EventBridge rule on Secrets Manager's `RotationFailed` events (sent via
  CloudTrail for every failed rotation) of this stack's secrets only (the
  ARN prefix `...:secret:naap-db/<stack>/`), so another stack's or team's
  failures neither page this stack's owners nor drown its own;
- a CloudWatch alarm on the rotation Lambda's `Errors` metric (any error in
  five minutes), which also catches a Lambda that fails before Secrets
  Manager records the rotation as failed.

The topic the stack creates is encrypted with a KMS key of its own: the
messages name secrets and failures, and AWS's managed SNS key cannot be
used by EventBridge or CloudWatch, so the key's policy lets exactly those
two services of this account use it.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from naapdb.settings import StackSettings

ERRORS_PERIOD_SECONDS = 300
PUBLISHERS = ("events.amazonaws.com", "cloudwatch.amazonaws.com")


def rotation_failed_pattern(secrets_prefix: str) -> dict[str, object]:
    """Secrets Manager's `RotationFailed` events of the secrets whose ARN
    starts with `secrets_prefix` (CloudTrail puts it in additionalEventData)."""
    return {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": ["RotationFailed"],
            "additionalEventData": {"SecretId": [{"prefix": secrets_prefix}]},
        },
    }


def topic_key_policy(account: str, partition: str) -> str:
    """The alarm topic's key: the account administers it; EventBridge and
    CloudWatch of this account may encrypt messages for the topic with it."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "AlarmPublishers",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
            ],
        }
    )


def topic_policy(topic_arn: str, account: str) -> str:
    """EventBridge and CloudWatch of this account may publish to the topic."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "RotationAlarms",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        }
    )


def rotation_alarms(
    name: str,
    settings: StackSettings,
    function: aws.lambda_.Function,
    account: pulumi.Output[str],
    secrets_pattern: pulumi.Output[str],
    tags: dict[str, str],
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """The rule, the alarm and (unless configured) the topic and its key;
    returns the topic's ARN. `secrets_pattern` is the stack's secrets' ARN
    pattern (`...:secret:naap-db/<stack>/*`)."""
    child = pulumi.ResourceOptions(parent=parent)
    configured = settings.credentials.alarm_topic_arn
    if configured:
        topic_arn: pulumi.Output[str] = pulumi.Output.from_input(configured)
    else:
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=parent))
        key = aws.kms.Key(
            f"{name}-alarms",
            description=f"naap-db {settings.stack}: the rotation alarm topic",
            enable_key_rotation=True,
            policy=pulumi.Output.all(account, partition.partition).apply(
                lambda values: topic_key_policy(values[0], values[1])
            ),
            tags=tags,
            opts=child,
        )
        topic = aws.sns.Topic(
            f"{name}-alarms",
            display_name=f"naap-db {settings.stack}: password rotation failures",
            kms_master_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{name}-alarms",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account).apply(
                lambda values: topic_policy(values[0], values[1])
            ),
            opts=child,
        )
        topic_arn = topic.arn
    rule = aws.cloudwatch.EventRule(
        f"{name}-rotation-failed",
        description=f"naap-db {settings.stack}: a Secrets Manager rotation failed",
        event_pattern=secrets_pattern.apply(
            lambda pattern: json.dumps(rotation_failed_pattern(pattern.removesuffix("*")))
        ),
        tags=tags,
        opts=child,
    )
    aws.cloudwatch.EventTarget(
        f"{name}-rotation-failed",
        rule=rule.name,
        arn=topic_arn,
        opts=child,
    )
    aws.cloudwatch.MetricAlarm(
        f"{name}-lambda-errors",
        alarm_description=(
            f"naap-db {settings.stack}: the rotation Lambda failed; a pending version may block "
            "the next rotation (docs/credentials.md: Recover from a failed rotation)"
        ),
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions={"FunctionName": function.name},
        statistic="Sum",
        period=ERRORS_PERIOD_SECONDS,
        evaluation_periods=1,
        threshold=1,
        comparison_operator="GreaterThanOrEqualToThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        tags=tags,
        opts=child,
    )
    return topic_arn

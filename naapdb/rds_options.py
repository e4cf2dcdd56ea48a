"""Checks of the RDS operating options (`naap-db:server` of kind `rds`):
backup and maintenance windows, enhanced monitoring, the retention and key
of the instance's CloudWatch log groups, and the CA bundle paths.

Kept apart from `settings` (which calls `check_rds_operations`) so each
module stays one concern; every refusal names its key and the fix.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from naapdb.errors import ConfigError

if TYPE_CHECKING:
    from naapdb.server_settings import RdsServer

# What CloudWatch Logs accepts as a retention (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_WINDOW_MINUTES = 30
_TIME = r"([01]\d|2[0-3]):([0-5]\d)"
BACKUP_WINDOW = re.compile(rf"{_TIME}-{_TIME}")
MAINTENANCE_WINDOW = re.compile(rf"({'|'.join(DAYS)}):{_TIME}-({'|'.join(DAYS)}):{_TIME}")
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES


def check_rds_operations(server: RdsServer, key: str) -> None:
    """Every operating option of an rds server, or one ConfigError."""
    backup = _backup_window(server.backup_window, f"{key}.backupWindow")
    maintenance = _maintenance_window(server.maintenance_window, f"{key}.maintenanceWindow")
    if backup is not None and maintenance is not None:
        start, end = maintenance
        daily = [(day * DAY_MINUTES + backup[0], day * DAY_MINUTES + backup[1]) for day in range(7)]
        if any(_overlap((start, end), window) for window in daily):
            raise ConfigError(
                f"{key}.maintenanceWindow",
                f"{server.maintenance_window} overlaps the backup window "
                f"{server.backup_window}; RDS refuses that, move one of them",
            )
    if server.monitoring_interval not in MONITORING_INTERVALS:
        raise ConfigError(
            f"{key}.monitoringInterval",
            f"{server.monitoring_interval} is not one of "
            f"{', '.join(map(str, MONITORING_INTERVALS))} (seconds; 0 is off)",
        )
    if server.monitoring_role_arn is not None:
        if not server.monitoring_role_arn.startswith("arn:"):
            raise ConfigError(f"{key}.monitoringRoleArn", "must be an IAM role ARN (arn:...)")
        if server.monitoring_interval == 0:
            raise ConfigError(
                f"{key}.monitoringRoleArn",
                "is unused while monitoringInterval is 0; set an interval or remove it",
            )
    if server.log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"{key}.logRetentionDays",
            f"{server.log_retention_days} is not a CloudWatch Logs retention; use one of "
            f"{', '.join(map(str, LOG_RETENTION_DAYS))}",
        )
    if server.log_kms_key_id is not None and not server.log_kms_key_id.startswith("arn:"):
        raise ConfigError(
            f"{key}.logKmsKeyId",
            "must be a KMS key ARN (CloudWatch Logs takes no alias or bare id); "
            "remove it to keep the default encryption",
        )
    for name, value in (
        ("caBundle", server.ca_bundle),
        ("clientSslRootCert", server.client_ssl_root_cert),
    ):
        if value is not None and not value.strip():
            raise ConfigError(f"{key}.{name}", "is empty; remove it to use the default")
    if server.trust_ca_bundle and server.ca_bundle is None:
        raise ConfigError(
            f"{key}.trustCaBundle",
            "trusts the bundle caBundle names, but caBundle is not set; remove it (the "
            "committed bundle needs no trust flag)",
        )


def _minutes(hours: str, minutes: str) -> int:
    return int(hours) * 60 + int(minutes)


def _backup_window(window: str | None, key: str) -> tuple[int, int] | None:
    """The daily backup window in minutes of the day (end may pass midnight)."""
    if window is None:
        return None
    match = BACKUP_WINDOW.fullmatch(window)
    if not match:
        raise ConfigError(key, f"{window!r} is not hh24:mi-hh24:mi in UTC, e.g. 03:00-04:00")
    start = _minutes(match[1], match[2])
    end = _minutes(match[3], match[4])
    end += DAY_MINUTES if end <= start else 0
    if end - start < MIN_WINDOW_MINUTES:
        raise ConfigError(key, f"{window} is shorter than {MIN_WINDOW_MINUTES} minutes")
    return start, end


def _maintenance_window(window: str | None, key: str) -> tuple[int, int] | None:
    """The weekly maintenance window in minutes of the week (end may wrap)."""
    if window is None:
        return None
    match = MAINTENANCE_WINDOW.fullmatch(window)
    if not match:
        raise ConfigError(
            key, f"{window!r} is not ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. sun:05:00-sun:06:00"
        )
    start = DAYS.index(match[1]) * DAY_MINUTES + _minutes(match[2], match[3])
    end = DAYS.index(match[4]) * DAY_MINUTES + _minutes(match[5], match[6])
    end += WEEK_MINUTES if end <= start else 0
    if end - start < MIN_WINDOW_MINUTES:
        raise ConfigError(key, f"{window} is shorter than {MIN_WINDOW_MINUTES} minutes")
    return start, end


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> bool:
    """Whether two ranges on the weekly clock overlap (either may wrap the week)."""
    return any(
        first[0] + shift_a < second[1] + shift_b and second[0] + shift_b < first[1] + shift_a
        for shift_a in (0, WEEK_MINUTES)
        for shift_b in (0, WEEK_MINUTES)
    )

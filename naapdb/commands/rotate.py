"""`rotate --secret-id ID`: rotate one identity's alternating logins now,
running Secrets Manager's four steps from this machine (which must reach the
database and Secrets Manager). Prints which login is current afterwards,
never a password. Exit 0 rotated, 1 a step failed (AWSCURRENT unchanged),
2 bad input or an AWS error."""

from __future__ import annotations

import argparse
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--secret-id",
        required=True,
        help="the identity's secret, name or ARN (e.g. naap-db/prod/naap_app; "
        "`pulumi stack output secret_arns` lists them)",
    )
    parser.add_argument(
        "--region",
        default=None,
        help="the AWS region of the secret (default: AWS_REGION or the AWS profile's; "
        "one of them is needed)",
    )


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

    from naapdb.connection import one_line, redact
    from naapdb.rotate import RotationError, quiet_aws_logs, rotate_now, secrets_client

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    quiet_aws_logs()
    try:
        result = rotate_now(secrets_client(args.region), args.secret_id)
    except RotationError as error:
        print(
            f"error: rotation of {args.secret_id} failed: {error}; AWSCURRENT is unchanged",
            file=sys.stderr,
        )
        return 1
    except NoRegionError:
        print(
            "error: no AWS region: pass --region (e.g. --region us-east-1) or set AWS_REGION",
            file=sys.stderr,
        )
        return 2
    except (BotoCoreError, ClientError) as error:
        print(f"error: {redact(one_line(error))}", file=sys.stderr)
        return 2
    print(
        f"{args.secret_id}: AWSCURRENT is now {result.username} (version {result.version}); "
        f"{result.previous_username} keeps working as AWSPREVIOUS until the next rotation"
    )
    return 0

"""CI's side of the AWS account (components/ci_account.py); docs/ci.md."""

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # components/, naapdb/

from components.ci_account import CiAccount, ci_settings

account = CiAccount("naap-db-ci", ci_settings())
pulumi.export("role_arns", account.role_arns)
pulumi.export("backend_url", account.backend_url)
pulumi.export("prod_key_arn", account.prod_key_arn)

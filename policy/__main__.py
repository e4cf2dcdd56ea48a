"""Serves the `naap-db` policy pack to the Pulumi engine (`pulumi preview
--policy-pack policy`). Building the `PolicyPack` starts its gRPC server and
blocks, so this file only wires the policies defined in `policies.py`."""

from __future__ import annotations

from policies import POLICIES  # the CLI runs this file with policy/ on sys.path
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name="naap-db",
    description="naap-db guardrails: least-privilege roles, a hardened RDS instance, "
    "loopback-only container ports, schemas never dropped with CASCADE, no plaintext password.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(POLICIES),
)

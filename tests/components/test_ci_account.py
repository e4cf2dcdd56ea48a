"""CI's AWS side (`ci-aws/`, issue 21 gap 10) under mocks, with its real
`Pulumi.yaml` and `Pulumi.ci.yaml`: the OIDC provider, each role's trust as
docs/ci.md states it (read from the page), no role reaching prod trusting a
`pull_request` subject, every role a workflow job assumes trusting that
job's subject, and the state bucket's and prod key's settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from naapdb import ci_roles
from naapdb.ci_roles import ROLES, CiRole
from tests import harness
from tests.harness import ROOT, Run

CI_AWS = ROOT / "ci-aws"
REPOSITORY = "acme/naap-db"  # ci-aws/Pulumi.ci.yaml
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
SUB = f"{ci_roles.OIDC_HOST}:sub"
AUD = f"{ci_roles.OIDC_HOST}:aud"


def run_ci(overrides: dict[str, Any] | None = None, raise_errors: bool = True) -> Run:
    return harness.run_program("ci", overrides, project_dir=CI_AWS, raise_errors=raise_errors)


@pytest.fixture(scope="module")
def ci() -> Run:
    return run_ci()


def trust_of(run: Run, secret: str) -> dict[str, Any]:
    role = next(r for r in ROLES if r.secret == secret)
    registered = run.one(ROLE, f"naap-db-ci-{role.key}")
    return dict(json.loads(registered.inputs["assumeRolePolicy"]))


def permissions_of(run: Run, key: str) -> dict[str, Any]:
    return dict(json.loads(run.one(ROLE_POLICY, f"naap-db-ci-{key}").inputs["policy"]))


def subjects(trust: dict[str, Any]) -> list[str]:
    (statement,) = trust["Statement"]
    return list(statement["Condition"]["StringEquals"][SUB])


def documented_subjects() -> dict[str, list[str]]:
    """docs/ci.md's trust list: each `AWS_*_ROLE_ARN` bullet and the
    `repo:OWNER/REPO:...` subjects it names."""
    text = (ROOT / "docs" / "ci.md").read_text()
    found = {}
    for bullet in re.findall(r"^- `(AWS_\w+_ROLE_ARN)`:(.*?)(?=^- |^\n)", text, re.M | re.S):
        found[bullet[0]] = re.findall(r"`repo:OWNER/REPO:([^`]+)`", bullet[1])
    return found


def test_the_oidc_provider_is_githubs_for_sts(ci: Run) -> None:
    provider = ci.one(PROVIDER)
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_each_roles_trust_is_what_docs_ci_states(ci: Run) -> None:
    documented = documented_subjects()
    assert set(documented) == {role.secret for role in ROLES}  # five roles, each written down
    provider_arn = ci.one(PROVIDER).state["arn"]
    for secret, expected in documented.items():
        trust = trust_of(ci, secret)
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Federated": provider_arn}
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"]["StringEquals"][AUD] == "sts.amazonaws.com"
        assert set(statement["Condition"]) == {"StringEquals"}  # no StringLike wildcard
        assert subjects(trust) == [f"repo:{REPOSITORY}:{subject}" for subject in expected], secret


def prod_trust_problems(trust: dict[str, Any], permissions: dict[str, Any]) -> list[str]:
    """What makes a role that reaches prod (its key or state) unsafe to
    trust: a pull request's subject, a wildcard, or no environment or main."""
    text = json.dumps(permissions)
    if "ProdSecretsKey" not in text and "/prod." not in text:
        return []
    problems = []
    for statement in trust["Statement"]:
        for operator, conditions in statement.get("Condition", {}).items():
            for subject in conditions.get(SUB, []) if isinstance(conditions, dict) else []:
                if (
                    "pull_request" in subject
                    or "*" in subject
                    or operator != "StringEquals"
                    or not re.search(
                        r":(environment:(preview-prod|production|drift-prod)|ref:refs/heads/main)$",
                        subject,
                    )
                ):
                    problems.append(subject)
        if SUB not in json.dumps(statement):
            problems.append("no sub condition")
    return problems


def test_no_role_that_reaches_prod_trusts_a_pull_request(ci: Run) -> None:
    reaching_prod = 0
    for role in ROLES:
        permissions = permissions_of(ci, role.key)
        assert prod_trust_problems(trust_of(ci, role.secret), permissions) == [], role.key
        reaching_prod += "ProdSecretsKey" in json.dumps(permissions)
    assert reaching_prod == 3  # prod-preview, prod-drift, prod-deploy


def test_a_prod_role_trusting_pull_requests_fails_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: a prod role that also trusts
    `pull_request` (what a hurried edit would add) is caught."""
    careless = CiRole(
        "prod-preview",
        "AWS_PREVIEW_ROLE_ARN",
        ("environment:preview-prod", "pull_request"),
        "prod",
        "preview",
        "careless",
    )
    monkeypatch.setattr(ci_roles, "ROLES", (careless, *[r for r in ROLES if r.key != careless.key]))
    monkeypatch.setattr("components.ci_account.ROLES", ci_roles.ROLES)
    run = run_ci()
    trust = trust_of(run, "AWS_PREVIEW_ROLE_ARN")
    assert prod_trust_problems(trust, permissions_of(run, "prod-preview")) == [
        f"repo:{REPOSITORY}:pull_request"
    ]


def job_subjects() -> Iterator[tuple[str, str, str, str]]:
    """(workflow, job, role secret, OIDC subject) of every job that assumes
    a role, for each stack of its matrix: the environment it names, else
    the ref it runs on (main for deploy and nightly, a pull request's)."""
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        on = doc.get("on", doc.get(True))
        for job_id, job in doc["jobs"].items():
            steps = [
                s
                for s in job.get("steps") or []
                if "configure-aws-credentials" in str(s.get("uses"))
            ]
            if not steps:
                continue
            expression = steps[0]["with"]["role-to-assume"]
            matrix = job.get("strategy", {}).get("matrix", {})
            entries = matrix.get("include") or [{"stack": s} for s in matrix.get("stack", [None])]
            for entry in entries:
                stack = entry.get("stack")
                secret = _choose(expression, stack)
                environment = job.get("environment")
                if environment == "${{ matrix.environment }}":
                    environment = entry["environment"]
                elif isinstance(environment, str) and "matrix.stack" in environment:
                    environment = _choose(environment, stack)
                if environment:
                    subject = f"environment:{environment}"
                elif "pull_request" in on:
                    subject = "pull_request"
                else:
                    subject = "ref:refs/heads/main"
                yield path.name, job_id, secret, subject


def _choose(expression: str, stack: str | None) -> str:
    """`${{ matrix.stack == 'prod' && A || B }}` for one stack, or `${{ secrets.X }}`."""
    choice = re.fullmatch(
        r"\$\{\{\s*matrix\.stack == 'prod' && (\S+) \|\| (\S+)\s*\}\}", expression
    )
    value = (choice[1] if stack == "prod" else choice[2]) if choice else expression
    return value.strip("'").removeprefix("${{ ").removesuffix(" }}").removeprefix("secrets.")


def test_every_role_a_workflow_assumes_trusts_that_jobs_subject(ci: Run) -> None:
    seen = list(job_subjects())
    assert len(seen) == 7  # preview x2, dev, prod-plan, prod, nightly x2
    for workflow, job_id, secret, subject in seen:
        assert f"repo:{REPOSITORY}:{subject}" in subjects(trust_of(ci, secret)), (
            workflow,
            job_id,
            secret,
        )
    assert {secret for _, _, secret, _ in seen} == {role.secret for role in ROLES}
    assert set(ci.outputs["role_arns"]) == {role.secret for role in ROLES}


def test_dev_roles_reach_nothing_of_prod_and_previews_write_no_state(ci: Run) -> None:
    for role in ROLES:
        text = json.dumps(permissions_of(ci, role.key))
        if role.stack == "dev":
            assert "kms" not in text and "/prod." not in text and "secretsmanager" not in text
            assert "stacks/naap-db/dev.json" in text
        else:
            assert "stacks/naap-db/dev" not in text
        statements = permissions_of(ci, role.key)["Statement"]
        writes = [s for s in statements if "s3:PutObject" in json.dumps(s.get("Action"))]
        if role.access == "deploy":
            assert any("stacks/naap-db" in json.dumps(s["Resource"]) for s in writes)
        else:
            assert all("/locks/" in json.dumps(s["Resource"]) for s in writes), role.key
    drift = json.dumps(permissions_of(ci, "prod-drift"))
    assert "secret:naap-db/prod/naap_readonly-*" in drift
    iam = next(
        s for s in permissions_of(ci, "prod-deploy")["Statement"] if s["Sid"] == "TheProgramsRoles"
    )
    assert iam["Resource"].endswith(":role/naap-*")


def test_the_state_bucket_is_versioned_encrypted_private_and_kept(ci: Run) -> None:
    bucket = ci.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "acme-naap-db-pulumi-state"
    versioning = ci.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    encryption = ci.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    (rule,) = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = ci.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[key] is True
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    (deny,) = json.loads(ci.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    for resource in (bucket, versioning, encryption, block):
        assert resource.protect, resource.name
    assert ci.outputs["backend_url"] == "s3://acme-naap-db-pulumi-state/naap-db"


def test_prods_key_is_the_one_the_prod_stack_names_and_only_prod_roles_use_it(ci: Run) -> None:
    key = ci.one("aws:kms/key:Key")
    alias = ci.one("aws:kms/alias:Alias")
    assert key.inputs["enableKeyRotation"] is True and key.protect and alias.protect
    prod_stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    assert prod_stack["secretsprovider"].startswith(f"awskms://{alias.inputs['name']}?")
    statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
    users = statements["ProdRolesDecrypt"]["Principal"]["AWS"]
    assert sorted(users) == sorted(
        ci.one(ROLE, f"naap-db-ci-{r.key}").state["arn"] for r in ROLES if r.stack == "prod"
    )
    assert statements["DeployEncrypts"]["Principal"]["AWS"].endswith("role/naap-db-ci-prod-deploy")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"naap-db-ci:repository": "not a repo"},
            "naap-db-ci:repository: 'not a repo' is not OWNER/NAME",
        ),
        (
            {"naap-db-ci:stateBucket": "Bad_Bucket"},
            "naap-db-ci:stateBucket: 'Bad_Bucket' is not an S3",
        ),
        ({"naap-db-ci:repository": None}, "naap-db-ci:repository: is required"),
        (
            {"naap-db-ci:prodKeyAlias": "naap-db-prod"},
            "naap-db-ci:prodKeyAlias: must start with alias/",
        ),
    ],
)
def test_bad_ci_config_names_the_key(overrides: dict[str, Any], message: str) -> None:
    run = run_ci(overrides, raise_errors=False)
    assert run.error is not None and str(run.error).startswith(message)
    assert not run.of_type(ROLE)


def test_an_existing_oidc_provider_is_used_as_is() -> None:
    arn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    run = run_ci({"naap-db-ci:oidcProviderArn": arn})
    assert not run.of_type(PROVIDER)
    (statement,) = trust_of(run, "AWS_DEPLOY_ROLE_ARN")["Statement"]
    assert statement["Principal"] == {"Federated": arn}

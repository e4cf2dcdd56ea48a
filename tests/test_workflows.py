"""The GitHub Actions workflows: they parse, they hold the jobs and steps CI
relies on (preview with the policy pack on pull requests, plan-constrained
prod deploys behind a protected environment, nightly drift checks), and no
step can print a secret."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
SECRET_REF = re.compile(r"\bsecrets\s*(\.|\[)")
TRACING = re.compile(r"\bset\s+-[a-wyz]*x|\bset\s+-o\s+xtrace|\bbash\s+-[a-z]*x")


def load(name: str) -> dict[Any, Any]:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(doc, dict), name
    return doc


def triggers(doc: dict[Any, Any]) -> dict[str, Any]:
    """`on:` (YAML 1.1 reads the bare key `on` as the boolean True)."""
    on = doc.get("on", doc.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict)
    return on


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """The job's steps that use `action` (any version)."""
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def one_pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    """The job's one pulumi/actions step that runs a command (another may
    only install the CLI, for a step that runs it before)."""
    found = [s for s in uses(job, "pulumi/actions") if "command" in (s.get("with") or {})]
    assert len(found) == 1, f"expected one pulumi/actions command step, got {len(found)}"
    assert found[0]["uses"] == "pulumi/actions@v6"
    return dict(found[0]["with"])


def all_workflows() -> Iterator[tuple[str, dict[Any, Any]]]:
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        yield path.name, load(path.name)


def all_steps() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name, doc in all_workflows():
        for job_id, job in doc["jobs"].items():
            for step in steps(job):
                yield name, job_id, step


def env_names_bound_to_secrets(*envs: Any) -> set[str]:
    return {
        key
        for env in envs
        if isinstance(env, dict)
        for key, value in env.items()
        if SECRET_REF.search(str(value))
    }


def test_the_four_workflows_exist_and_parse() -> None:
    names = {name for name, _ in all_workflows()}
    assert {"pull-request.yml", "access-diff.yml", "deploy.yml", "nightly.yml"} <= names
    for _, doc in all_workflows():
        assert doc["jobs"]
        assert triggers(doc)
        for job in doc["jobs"].values():
            assert job.get("runs-on")
            for step in steps(job):
                assert ("uses" in step) != ("run" in step), step


def test_pull_request_runs_the_test_suite_first() -> None:
    doc = load("pull-request.yml")
    assert "pull_request" in triggers(doc)
    test = doc["jobs"]["test"]
    runs = [s["run"] for s in steps(test) if "run" in s]
    assert any(re.search(r"(^|\s)bash \.ci/run\b", run) for run in runs)
    assert doc["jobs"]["preview"]["needs"] in ("test", ["test"])


def test_pull_request_previews_dev_and_prod_with_comment_plan_and_policy() -> None:
    doc = load("pull-request.yml")
    preview = doc["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    step = one_pulumi_step(preview)
    assert step["command"] == "preview"
    assert step["stack-name"] == "${{ matrix.stack }}"
    assert step["work-dir"] == "."
    assert step["comment-on-pr"] is True
    assert step["edit-pr-comment"] is True
    assert step["diff"] is True
    assert step["policyPacks"] == "policy"
    assert step["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    plan = step["plan"]
    assert "${{ matrix.stack }}" in plan
    (upload,) = uses(preview, "actions/upload-artifact")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == plan
    assert upload["with"]["if-no-files-found"] == "error"


def test_pull_request_preview_secrets_and_oidc_role() -> None:
    doc = load("pull-request.yml")
    preview = doc["jobs"]["preview"]
    assert doc["permissions"] == {"contents": "read"}
    assert preview["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "id-token": "write",
    }
    assert "secrets.PULUMI_CONFIG_PASSPHRASE_DEV" in preview["env"]["PULUMI_CONFIG_PASSPHRASE"]
    (aws,) = uses(preview, "aws-actions/configure-aws-credentials")
    assert aws["uses"] == "aws-actions/configure-aws-credentials@v4"
    assert aws["with"]["role-to-assume"] == (
        "${{ matrix.stack == 'prod' && secrets.AWS_PREVIEW_ROLE_ARN"
        " || secrets.AWS_DEV_PREVIEW_ROLE_ARN }}"
    )
    assert aws["with"]["aws-region"]
    # the role is assumed before the preview that needs it
    names = [s.get("uses", "").split("@")[0] for s in steps(preview)]
    assert names.index("aws-actions/configure-aws-credentials") < names.index("pulumi/actions")
    # the test job needs nothing but the code
    assert "permissions" not in doc["jobs"]["test"] or doc["jobs"]["test"]["permissions"] == {
        "contents": "read"
    }


def test_pull_request_builds_both_virtualenvs_before_preview() -> None:
    preview = load("pull-request.yml")["jobs"]["preview"]
    script = "\n".join(s["run"] for s in steps(preview) if "run" in s)
    assert "python -m venv venv" in script
    assert "-r requirements.txt" in script
    assert "python -m venv policy/venv" in script
    assert "-r policy/requirements.txt" in script


def test_deploy_updates_dev_on_push_to_main() -> None:
    doc = load("deploy.yml")
    on = triggers(doc)
    assert on["push"]["branches"] == ["main"]
    dev = doc["jobs"]["dev"]
    assert "push" in dev["if"]
    step = one_pulumi_step(dev)
    assert (step["command"], step["stack-name"], step["policyPacks"]) == ("up", "dev", "policy")


def test_deploy_prod_by_dispatch_through_production_applying_the_plan() -> None:
    doc = load("deploy.yml")
    assert "workflow_dispatch" in triggers(doc)
    jobs = doc["jobs"]
    plan_job, prod = jobs["prod-plan"], jobs["prod"]
    assert "workflow_dispatch" in plan_job["if"] and "refs/heads/main" in plan_job["if"]

    preview = one_pulumi_step(plan_job)
    assert (preview["command"], preview["stack-name"]) == ("preview", "prod")
    assert preview["policyPacks"] == "policy"
    (upload,) = uses(plan_job, "actions/upload-artifact")
    assert upload["with"]["path"] == preview["plan"]

    assert prod["needs"] in ("prod-plan", ["prod-plan"])
    assert prod["environment"] in ("production", {"name": "production"})
    (download,) = uses(prod, "actions/download-artifact")
    assert download["with"]["name"] == upload["with"]["name"]
    up = one_pulumi_step(prod)
    assert (up["command"], up["stack-name"]) == ("up", "prod")
    assert up["plan"] == preview["plan"]
    assert up["policyPacks"] == "policy"
    (aws,) = uses(prod, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    order = [s.get("uses", "").split("@")[0] for s in steps(prod)]
    assert order.index("actions/download-artifact") < order.index("pulumi/actions")
    for job in (jobs["dev"], plan_job, prod):
        assert job["permissions"]["id-token"] == "write"


def test_dev_deploys_recover_first_and_save_the_state_once() -> None:
    """docs/recovery.md: dev's updates skip intermediate checkpoints, so each
    first runs `naapdb recover --unlock` (after the CLI is installed and the
    state's credentials are in place), which is safe only because this job's
    runs of dev never overlap."""
    dev = load("deploy.yml")["jobs"]["dev"]
    assert dev["env"]["PULUMI_SKIP_CHECKPOINTS"] == "true"
    assert dev["concurrency"]["cancel-in-progress"] is False
    order = steps(dev)
    (recover,) = [i for i, s in enumerate(order) if "naapdb recover" in s.get("run", "")]
    assert order[recover]["run"].split() == ["bin/naapdb", "recover", "--stack", "dev", "--unlock"]
    installs = [i for i, s in enumerate(order) if s.get("uses", "").startswith("pulumi/actions")]
    (up,) = [i for i in installs if "command" in order[i]["with"]]
    (aws,) = [i for i, s in enumerate(order) if "configure-aws-credentials" in s.get("uses", "")]
    assert aws < recover < up and any(i < recover for i in installs)
    assert "venv/bin/pip install" in "".join(s.get("run", "") for s in order[:recover])


def test_prod_updates_keep_checkpoints_and_every_preview_skips_them() -> None:
    """A preview saves nothing; prod's `up` keeps Pulumi's checkpoints
    (recovery covers neither its AWS objects nor its reviewed plan)."""
    deploy, jobs = load("deploy.yml")["jobs"], []
    assert deploy["prod"]["env"]["PULUMI_SKIP_CHECKPOINTS"] == "false"
    jobs += [deploy["prod-plan"], load("pull-request.yml")["jobs"]["preview"]]
    jobs += list(load("nightly.yml")["jobs"].values())
    for job in jobs:
        assert one_pulumi_step(job)["command"] == "preview"
        assert job["env"]["PULUMI_SKIP_CHECKPOINTS"] == "true"


def test_nightly_checks_drift_on_each_stack() -> None:
    doc = load("nightly.yml")
    on = triggers(doc)
    assert on["schedule"][0]["cron"]
    assert "workflow_dispatch" in on
    (job,) = doc["jobs"].values()
    entries = job["strategy"]["matrix"]["include"]
    assert [(e["stack"], e["environment"]) for e in entries] == [
        ("dev", "dev"),
        ("prod", "drift-prod"),
    ]
    assert job["environment"] == "${{ matrix.environment }}"
    (aws,) = uses(job, "aws-actions/configure-aws-credentials")
    role = aws["with"]["role-to-assume"]
    assert _for_stack(role, "prod") == "secrets.AWS_DRIFT_ROLE_ARN"
    assert _for_stack(role, "dev") == "secrets.AWS_DEV_DEPLOY_ROLE_ARN"
    assert job["strategy"]["fail-fast"] is False
    step = one_pulumi_step(job)
    assert step["command"] == "preview"
    assert step["expect-no-changes"] is True
    assert step["refresh"] is True  # compare with the live resources, not the last state
    verify = [s for s in steps(job) if "naapdb verify" in s.get("run", "")]
    assert len(verify) == 1
    assert "--stack ${{ matrix.stack }}" in verify[0]["run"]
    assert SECRET_REF.search(verify[0]["env"]["DATABASE_URL"])
    assert job["permissions"]["id-token"] == "write"


def test_every_pulumi_job_overrides_the_project_backend() -> None:
    """Pulumi.yaml's `backend.url` (file://~, for laptops) wins over `pulumi
    login`; only PULUMI_BACKEND_URL wins over it, so every job that runs
    Pulumi sets it to the shared state bucket."""
    jobs = [
        (name, job_id, job)
        for name, doc in all_workflows()
        for job_id, job in doc["jobs"].items()
        if uses(job, "pulumi/actions")
    ]
    assert len(jobs) == 5
    for name, job_id, job in jobs:
        env = job.get("env") or {}
        assert env.get("PULUMI_BACKEND_URL") == "${{ secrets.PULUMI_BACKEND_URL }}", (name, job_id)


@pytest.mark.parametrize(("workflow", "job_id", "step"), list(all_steps()))
def test_no_step_can_print_a_secret(workflow: str, job_id: str, step: dict[str, Any]) -> None:
    """Secrets reach commands only through `env:` or an action's `with:`:
    never expanded into a shell script (where they could be echoed or land
    in argv), never referenced by a script by name, and no shell tracing."""
    if "run" not in step:
        return
    script = str(step["run"])
    assert not SECRET_REF.search(script), f"{workflow}/{job_id}: run: references secrets"
    assert not TRACING.search(script), f"{workflow}/{job_id}: shell tracing would print env"
    doc = load(workflow)
    job = doc["jobs"][job_id]
    for name in env_names_bound_to_secrets(doc.get("env"), job.get("env"), step.get("env")):
        assert not re.search(rf"\$\{{?{name}\b", script), (
            f"{workflow}/{job_id}: run: expands ${name}, which holds a secret"
        )
    assert not SECRET_REF.search(str(step.get("name", "")))


def test_secret_check_catches_the_leaks_it_guards_against() -> None:
    assert SECRET_REF.search('echo "${{ secrets.DATABASE_URL_PROD }}"')
    assert SECRET_REF.search("${{ secrets['X'] }}")
    assert TRACING.search("set -euxo pipefail")
    assert TRACING.search("set -o xtrace")
    assert not TRACING.search("set -euo pipefail")
    assert env_names_bound_to_secrets({"DATABASE_URL": "${{ secrets.DATABASE_URL_DEV }}"}) == {
        "DATABASE_URL"
    }


def test_workflows_pin_actions_to_a_major() -> None:
    for workflow, job_id, step in all_steps():
        if "uses" in step:
            action, _, version = str(step["uses"]).partition("@")
            assert re.fullmatch(r"v\d+|[0-9a-f]{40}", version), (workflow, job_id, action)


def test_docs_name_every_secret_and_variable_the_workflows_use() -> None:
    text = "\n".join(path.read_text() for path in WORKFLOWS.glob("*.yml"))
    used = set(re.findall(r"\b(?:secrets|vars)\.([A-Z0-9_]+)", text))
    docs = (ROOT / "docs" / "ci.md").read_text()
    missing = sorted(name for name in used if f"`{name}`" not in docs)
    assert not missing, f"docs/ci.md does not describe {missing}"


def test_workflow_dir_holds_only_yaml() -> None:
    assert all(p.suffix in (".yml", ".yaml") for p in Path(WORKFLOWS).iterdir())


def test_dev_jobs_need_a_dev_host() -> None:
    """Without DEV_RUNNER, `up dev` and the nightly dev check never run on a
    GitHub-hosted runner (the database would live on a machine thrown away
    after the job): they say what to set instead."""
    jobs = load("deploy.yml")["jobs"]
    assert "vars.DEV_RUNNER != ''" in jobs["dev"]["if"]
    assert jobs["dev"]["runs-on"] == "${{ vars.DEV_RUNNER }}"
    notice = jobs["dev-no-host"]
    assert "vars.DEV_RUNNER == ''" in notice["if"]
    script = "\n".join(step["run"] for step in steps(notice))
    assert "::notice" in script and "DEV_RUNNER" in script and "GITHUB_STEP_SUMMARY" in script
    drift = load("nightly.yml")["jobs"]["drift"]
    first, *rest = steps(drift)
    assert first["if"] == "matrix.stack == 'dev' && vars.DEV_RUNNER == ''"
    assert "::notice" in first["run"] and "DEV_RUNNER" in first["run"]
    assert "skip=true" in first["run"]
    assert all("steps.host.outputs.skip != 'true'" in str(step.get("if")) for step in rest)


def test_pull_requests_get_the_access_diff_per_stack_from_the_base_branchs_code() -> None:
    """Issue 21, gap 6: the access diff runs the base branch's workflow and
    code (`pull_request_target`) on the pull request's commit read as data:
    every command runs from the `base` checkout, none from `pull-request`."""
    doc = load("access-diff.yml")
    assert set(triggers(doc)) == {"pull_request_target"}
    job = doc["jobs"]["access-diff"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkouts = uses(job, "actions/checkout")
    assert [c["with"]["path"] for c in checkouts] == ["base", "pull-request"]
    assert "ref" not in checkouts[0]["with"]  # pull_request_target: the base branch
    assert checkouts[1]["with"]["ref"] == (
        "refs/pull/${{ github.event.pull_request.number }}/merge"
    )
    scripts = "\n".join(step.get("run", "") for step in steps(job))
    assert (
        'base/bin/naapdb diff --stack "$STACK" --project pull-request --base "$BASE_REF" '
        '--head "pull/$PR_NUMBER" --format markdown' in scripts
    )
    assert "base/scripts/pr-comment.py" in scripts
    for step in steps(job):
        for word in str(step.get("run", "")).split():
            program = word.strip("\"'")
            if program.endswith(".py") or program.split("/")[-1] in ("python", "naapdb", "pip"):
                assert program == "python" or program.startswith("base/"), program
    assert not uses(job, "aws-actions/configure-aws-credentials")  # no cloud account
    assert "access-diff" not in load("pull-request.yml")["jobs"]


def test_every_checkout_keeps_no_credentials() -> None:
    """Issue 21, gap 6: `actions/checkout` leaves the job token in
    `.git/config` unless told not to; later steps (and whatever a pull
    request's code runs) could read it."""
    for workflow, job_id, step in all_steps():
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, (workflow, job_id)


RUNNER_VARIABLES = re.compile(r"\bvars\.(DEV_RUNNER|PROD_RUNNER)\b|self-hosted")


def test_no_pull_request_workflow_names_a_self_hosted_runner() -> None:
    """Issue 21, gap 5: a pull request's own copy of its workflow runs; it
    must find no self-hosted runner, which docs/ci.md confines to a runner
    group that takes only deploy.yml and nightly.yml on main, ephemerally."""
    for name, doc in all_workflows():
        if {"pull_request", "pull_request_target"} & set(triggers(doc)):
            assert not RUNNER_VARIABLES.search(yaml.safe_dump(doc["jobs"])), name
    assert RUNNER_VARIABLES.search(yaml.safe_dump(load("deploy.yml")["jobs"]))  # it can fail
    ci = (ROOT / "docs" / "ci.md").read_text()
    section = ci.split("### Keeping pull requests off self-hosted runners", 1)[1].split("\n#", 1)[0]
    for phrase in ("runner group", "Selected workflows", "deploy.yml@refs/heads/main",
                   "nightly.yml@refs/heads/main", "--ephemeral"):  # fmt: skip
        assert phrase in section, phrase


DEV_SECRETS = ("PULUMI_CONFIG_PASSPHRASE_DEV", "DATABASE_URL_DEV")


def test_devs_secrets_are_read_only_in_its_environments() -> None:
    """Issue 21, gap 7: dev's passphrase and URL are secrets of the
    environments `dev` (deployments from main) and `preview-dev` (required
    reviewers), never of the repository, where any branch could read them."""
    for name, doc in all_workflows():
        for job_id, job in doc["jobs"].items():
            text = yaml.safe_dump(job)
            if not any(f"secrets.{secret}" in text for secret in DEV_SECRETS):
                continue
            environment = str(job.get("environment", ""))
            dev_environment = (
                _for_stack(environment, "dev") if "matrix.stack" in environment else environment
            )
            if environment == "${{ matrix.environment }}":
                entries = job["strategy"]["matrix"]["include"]
                dev_environment = next(e["environment"] for e in entries if e["stack"] == "dev")
            assert dev_environment in ("dev", "preview-dev"), (name, job_id)
    ci = (ROOT / "docs" / "ci.md").read_text()
    repository_secrets = ci.split("Secrets (Settings", 1)[1].split("Variables (", 1)[0]
    for secret in DEV_SECRETS:
        assert f"`{secret}`" not in repository_secrets, f"{secret} listed as a repository secret"
    environments = ci.split("### Environments", 1)[1].split("\n### ", 1)[0]
    assert all(f"`{secret}`" in environments for secret in DEV_SECRETS)


def _for_stack(expression: str, stack: str) -> str:
    """Evaluate `${{ matrix.stack == 'prod' && A || B }}` for one stack."""
    match = re.fullmatch(
        r"\$\{\{\s*matrix\.stack\s*==\s*'prod'\s*&&\s*(\S+)\s*\|\|\s*(\S+)\s*\}\}",
        expression.strip(),
    )
    assert match, f"not a prod/dev choice: {expression!r}"
    return (match[1] if stack == "prod" else match[2]).strip("'")


def test_pull_request_code_reaches_prod_only_after_a_maintainer_approves() -> None:
    """Issue 16: a pull request runs unreviewed code. Its prod preview runs in
    the protected environment `preview-prod` (required reviewers) and assumes
    the prod-capable role, which trusts only that environment's token (and
    main's); dev previews at once with a role that reads dev only. No other
    job of the pull-request workflow can get an OIDC token at all."""
    doc = load("pull-request.yml")
    preview = doc["jobs"]["preview"]
    (aws,) = uses(preview, "aws-actions/configure-aws-credentials")
    role = aws["with"]["role-to-assume"]
    assert _for_stack(preview["environment"], "prod") == "preview-prod"
    assert _for_stack(preview["environment"], "dev") == "preview-dev"
    assert _for_stack(role, "prod") == "secrets.AWS_PREVIEW_ROLE_ARN"
    assert _for_stack(role, "dev") == "secrets.AWS_DEV_PREVIEW_ROLE_ARN"
    for job_id, job in doc["jobs"].items():
        if (job.get("permissions") or {}).get("id-token") == "write":
            assert "environment" in job, f"{job_id} gets an OIDC token outside an environment"
    assert (doc.get("permissions") or {}).get("id-token") is None
    ci = (ROOT / "docs" / "ci.md").read_text()
    # The choice, the threat and the trust policy that enforces it are written down.
    for phrase in (
        "`preview-prod`",
        "required reviewers",
        "repo:OWNER/REPO:environment:preview-prod",
        "repo:OWNER/REPO:environment:preview-dev",
    ):
        assert phrase in ci, phrase
    trust_section = ci.split("`AWS_PREVIEW_ROLE_ARN`:", 1)[1].split("\n- ", 1)[0]
    assert "pull_request" not in trust_section, "the prod-capable role must not trust pull_request"

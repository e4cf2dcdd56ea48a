"""The policy pack against what the program really registers.

Each policy's `validate` (or `remediate`) gets `ResourceValidationArgs` built
the way pulumi_policy's analyzer builds them from the engine's request: the
recorded wire inputs (secrets re-wrapped at the paths the SDK sent as
secret), deserialized by pulumi_policy itself, behind its unknown-checking
proxy. The resources come from the mocks harness: the real dev and prod
programs (which must pass everything), and a sample program declaring each
resource kind through the real SDKs (so the inputs carry the SDKs' wire
names). Mutated copies must each be reported by exactly the policy that
guards what was changed.
"""

from __future__ import annotations

import asyncio
import copy
import re
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker as docker
import pulumi_postgresql as postgresql
import pytest
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime import mocks, settings
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi.runtime.sync_await import _sync_await
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    Secret,
)
from pulumi_policy.deserialize import deserialize_properties, serialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from policy import policies
from policy.policies import POLICIES
from tests import harness

ROOT = harness.ROOT
SECRET_SIG = {harness.SECRET_SIG: harness.SECRET_VALUE}


# --- building the analyzer's arguments from recorded resources --------------


def wire_inputs(resource: harness.Resource) -> dict[str, Any]:
    """The inputs as the SDK sent them: plain values with the secret
    signature back around every path that was secret."""
    inputs = copy.deepcopy(resource.inputs)
    for path in sorted(resource.secret_paths, key=len, reverse=True):
        inputs = _wrap_at(inputs, _path_tokens(path))
    return inputs


def _path_tokens(path: str) -> list[str | int]:
    return [
        int(index) if index else key for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)
    ]


def _wrap_at(value: Any, tokens: list[str | int]) -> Any:
    if not tokens:
        return {**SECRET_SIG, "value": value}
    head, rest = tokens[0], tokens[1:]
    value[head] = _wrap_at(value[head], rest)
    return value


def policy_args(
    resource: harness.Resource,
    run: harness.Run,
    *,
    config: dict[str, Any] | None = None,
    remediation: bool = False,
) -> ResourceValidationArgs:
    """What `_PolicyAnalyzerServicer.Analyze` (or `.Remediate`) hands a policy."""
    props = unknown_checking_proxy(deserialize_properties(wire_inputs(resource), remediation))
    opts = PolicyResourceOptions(
        resource.protect,
        list(resource.ignore_changes),
        resource.delete_before_replace,
        [],
        PolicyCustomTimeouts(0, 0, 0),
        list(resource.additional_secret_outputs),
        resource.parent or None,
    )
    provider = None
    provider_record = run.urns.get(resource.provider_urn) if resource.provider else None
    if provider_record is not None:
        provider = PolicyProviderResource(
            provider_record.type,
            unknown_checking_proxy(deserialize_properties(wire_inputs(provider_record))),
            provider_record.urn,
            provider_record.name,
        )
    return ResourceValidationArgs(
        resource.type, props, resource.urn, resource.name, opts, provider, config, {}
    )


@dataclass
class Outcome:
    """What the pack said about one resource."""

    violations: list[tuple[str, str]] = field(default_factory=list)
    remediations: dict[str, Any] = field(default_factory=dict)

    @property
    def violated(self) -> set[str]:
        return {name for name, _ in self.violations}


def analyze(
    resource: harness.Resource, run: harness.Run, config: dict[str, Any] | None = None
) -> Outcome:
    """Every policy of the pack on one resource, as the engine runs them."""
    outcome = Outcome()
    for policy in POLICIES:
        if policy.has_validation():

            def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
                outcome.violations.append((name, message))

            policy.validate(policy_args(resource, run, config=config), report)
        if policy.has_remediation():
            new_props = policy.remediate(policy_args(resource, run, remediation=True))
            if new_props is not None:
                outcome.remediations[policy.name] = new_props
    return outcome


# --- the sample program: every guarded kind, declared through the SDKs ------


def record(program: Callable[[], None]) -> harness.Run:
    """Runs `program` under the harness's recording mocks."""
    recording = harness.RecordingMocks()
    monitor = harness.RecordingMonitor(recording)
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_all_config({}, [])
    mocks.set_mocks(recording, project=harness.PROJECT, stack="policy", monitor=monitor)
    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(program))
    finally:
        settings.SETTINGS.outputs.clear()
    return harness.Run(
        resources=list(monitor.records),
        outputs={},
        secret_outputs=set(),
        urns={r.urn: r for r in monitor.records},
    )


SAMPLE_VERIFIER = "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5:c2VydmVya2V5"


def sample_program() -> None:
    """One compliant resource of each kind the pack guards."""
    password = pulumi.Output.secret("sample-password")
    # What a role gets instead of its password (naapdb.scram).
    verifier = pulumi.Output.secret(SAMPLE_VERIFIER)
    admin = postgresql.Provider(
        "admin",
        host="db.internal",
        port=5432,
        username="postgres",
        password=password,
        sslmode="require",
        superuser=False,
    )
    on_admin = pulumi.ResourceOptions(provider=admin)
    postgresql.Role("owner", name="naap_owner", login=False, opts=on_admin)
    postgresql.Role(
        "app",
        name="naap_app",
        login=True,
        password=verifier,
        superuser=False,
        create_role=False,
        create_database=False,
        bypass_row_level_security=False,
        replication=False,
        opts=on_admin,
    )
    postgresql.Schema(
        "community",
        name="plugin_community",
        owner="naap_owner",
        database="naap",
        opts=pulumi.ResourceOptions(provider=admin, retain_on_delete=True),
    )
    aws.rds.Instance(
        "naap",
        engine="postgres",
        engine_version="16",
        instance_class="db.m7g.large",
        allocated_storage=50,
        storage_encrypted=True,
        deletion_protection=True,
        publicly_accessible=False,
        backup_retention_period=14,
        manage_master_user_password=True,
        username="naap_admin",
        opts=pulumi.ResourceOptions(protect=True),
    )
    volume = docker.Volume(
        "data", name="naap-dev-data", opts=pulumi.ResourceOptions(retain_on_delete=True)
    )
    docker.Container(
        "postgres",
        image="postgres:16",
        envs=[
            "POSTGRES_DB=naap",
            pulumi.Output.concat("POSTGRES_PASSWORD=", password),
            "POSTGRES_INITDB_ARGS=--auth-host=scram-sha-256",
        ],
        ports=[docker.ContainerPortArgs(internal=5432, external=5432, ip="127.0.0.1")],
        volumes=[
            docker.ContainerVolumeArgs(
                volume_name=volume.name, container_path="/var/lib/postgresql/data"
            )
        ],
    )
    command.local.Command(
        "push",
        create="python -m naapdb push",
        environment={
            "DATABASE_URL": pulumi.Output.concat(
                "postgresql://naap_migrator:", password, "@db/naap"
            )
        },
    )


@pytest.fixture(scope="module")
def sample() -> harness.Run:
    return record(sample_program)


class StackRuns:
    """Each stack's program, run once per module and only when a test asks.

    prod deploys the rotation Lambda from a zip that `scripts/` builds; a
    stand-in zip takes its place (its content reaches no policy), the rest
    of the config is the stack's own."""

    def __init__(self, lambda_zip: Path) -> None:
        self._lambda_zip = lambda_zip
        self._runs: dict[str, harness.Run] = {}

    def __getitem__(self, stack: str) -> harness.Run:
        if stack not in self._runs:
            self._runs[stack] = harness.run_program(stack, self._overrides(stack))
        return self._runs[stack]

    def _overrides(self, stack: str) -> dict[str, Any]:
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        credentials = config.get("naap-db:credentials")
        if stack != "prod" or credentials is None:
            return {}
        return {"naap-db:credentials": {**credentials, "lambdaArchive": str(self._lambda_zip)}}


@pytest.fixture(scope="module")
def stacks(lambda_zip: Path) -> StackRuns:
    return StackRuns(lambda_zip)


def mutated(
    resource: harness.Resource,
    change: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> harness.Resource:
    inputs = copy.deepcopy(resource.inputs)
    if change is not None:
        change(inputs)
    return replace(resource, inputs=inputs, **options)


def setter(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        inputs[key] = value

    return change


def remover(key: str) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        inputs.pop(key, None)

    return change


def port_ip(ip: str | None) -> Callable[[dict[str, Any]], None]:
    def change(inputs: dict[str, Any]) -> None:
        for port in inputs["ports"]:
            if ip is None:
                port.pop("ip", None)
            else:
                port["ip"] = ip

    return change


# --- the pack itself --------------------------------------------------------


def test_pack_serves_every_policy_mandatory(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    def fake_pack(**kwargs: Any) -> None:  # the real one serves and blocks
        built.update(kwargs)

    monkeypatch.setattr("pulumi_policy.PolicyPack", fake_pack)
    monkeypatch.syspath_prepend(str(ROOT / "policy"))
    monkeypatch.delitem(sys.modules, "policies", raising=False)
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built["name"] == "naap-db"
    assert built["enforcement_level"] is EnforcementLevel.MANDATORY
    assert [p.name for p in built["policies"]] == [p.name for p in POLICIES]
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    levels = {p.name: p.enforcement_level for p in POLICIES}
    assert levels.pop("no-plaintext-password") is EnforcementLevel.REMEDIATE
    assert set(levels.values()) == {EnforcementLevel.MANDATORY}


def test_pulumi_policy_yaml_runs_python_in_a_virtualenv() -> None:
    doc = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert doc["runtime"]["name"] == "python"
    assert doc["runtime"]["options"]["virtualenv"] == "venv"
    requirements = (ROOT / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements


def test_validate_sees_no_secret_only_remediate_does(sample: harness.Run) -> None:
    """Why the password policy is a remediation: the analyzer unwraps
    secrets for validate; only remediation props keep the marker."""
    role = sample.one(policies.ROLE, "app")
    assert role.is_secret("password")
    validated = policy_args(role, sample).props
    assert validated["password"] == SAMPLE_VERIFIER
    raw = policy_args(role, sample, remediation=True).props["__target"]
    assert isinstance(raw["password"], Secret)


# --- the sample: compliant, then each mutation caught by its policy ---------


def test_sample_passes_every_policy(sample: harness.Run) -> None:
    guarded = {
        policies.ROLE,
        policies.SCHEMA,
        policies.RDS_INSTANCE,
        policies.CONTAINER,
        "docker:index/volume:Volume",
        "command:local:Command",
        "pulumi:providers:postgresql",
    }
    assert guarded <= sample.types()
    for resource in sample.resources:
        outcome = analyze(resource, sample)
        assert outcome.violations == [], resource.name
        assert outcome.remediations == {}, resource.name


ROLE_CASES = [
    ("superuser", True, "SUPERUSER"),
    ("createRole", True, "CREATEROLE"),
    ("createDatabase", True, "CREATEDB"),
    ("bypassRowLevelSecurity", True, "BYPASSRLS"),
    ("replication", True, "REPLICATION"),
    ("superuser", "true", "SUPERUSER"),
]

RDS_CASES = [
    (setter("deletionProtection", False), {}, "rds-deletion-protection"),
    (remover("deletionProtection"), {}, "rds-deletion-protection"),
    (setter("storageEncrypted", False), {}, "rds-storage-encrypted"),
    (remover("storageEncrypted"), {}, "rds-storage-encrypted"),
    (setter("publiclyAccessible", True), {}, "rds-not-publicly-accessible"),
    (setter("backupRetentionPeriod", 6.0), {}, "rds-backup-retention"),
    (setter("backupRetentionPeriod", 0.0), {}, "rds-backup-retention"),
    (remover("backupRetentionPeriod"), {}, "rds-backup-retention"),
    (setter("engineVersion", ""), {}, "rds-engine-version-pinned"),
    (remover("engineVersion"), {}, "rds-engine-version-pinned"),
    (setter("engineVersion", "latest"), {}, "rds-engine-version-pinned"),
    (setter("skipFinalSnapshot", True), {}, "rds-final-snapshot"),
    (None, {"protect": False}, "rds-instance-protected"),
]

CONTAINER_CASES = [port_ip("0.0.0.0"), port_ip(None), port_ip("::"), port_ip("10.1.2.3")]


def only_violation(outcome: Outcome, policy_name: str) -> str:
    assert outcome.violated == {policy_name}, outcome.violations
    assert outcome.remediations == {}
    return " ".join(message for _, message in outcome.violations)


@pytest.mark.parametrize(("key", "value", "attribute"), ROLE_CASES)
def test_sample_role_with_elevated_attribute_is_reported(
    sample: harness.Run, key: str, value: Any, attribute: str
) -> None:
    role = mutated(sample.one(policies.ROLE, "app"), setter(key, value))
    message = only_violation(analyze(role, sample), "postgresql-role-no-elevated-attributes")
    assert attribute in message and "naap_app" in message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_stack_role_password_is_a_verifier_and_a_plain_one_is_refused(
    stacks: StackRuns, stack: str
) -> None:
    """The program hands roles SCRAM verifiers (issue 16); the pack refuses a
    role whose `password` is the password itself."""
    run = stacks[stack]
    with_password = [r for r in stack_resources(run, policies.ROLE) if r.inputs.get("password")]
    assert with_password
    for role in with_password:
        assert analyze(role, run).violated == set()
        message = only_violation(
            analyze(mutated(role, setter("password", "pw-in-clear-0123456789")), run),
            "postgresql-role-password-is-scram-verifier",
        )
        assert role.inputs["name"] in message and "pw-in-clear" not in message


def test_sample_schema_dropped_with_cascade_is_reported(sample: harness.Run) -> None:
    schema = mutated(sample.one(policies.SCHEMA), setter("dropCascade", True))
    message = only_violation(analyze(schema, sample), "postgresql-schema-no-drop-cascade")
    assert "plugin_community" in message


@pytest.mark.parametrize(("change", "options", "policy_name"), RDS_CASES)
def test_sample_rds_instance_weakened_is_reported(
    sample: harness.Run, change: Any, options: dict[str, Any], policy_name: str
) -> None:
    instance = mutated(sample.one(policies.RDS_INSTANCE), change, **options)
    only_violation(analyze(instance, sample), policy_name)


@pytest.mark.parametrize("change", CONTAINER_CASES)
def test_sample_container_port_off_loopback_is_reported(sample: harness.Run, change: Any) -> None:
    container = mutated(sample.one(policies.CONTAINER), change)
    message = only_violation(analyze(container, sample), "docker-ports-on-loopback")
    assert "5432" in message
    allowed = analyze(container, sample, config={"allowPublicPorts": True})
    assert allowed.violations == []


def test_sample_container_on_ipv6_loopback_passes(sample: harness.Run) -> None:
    container = mutated(sample.one(policies.CONTAINER), port_ip("::1"))
    assert analyze(container, sample).violations == []


def unsecret(resource: harness.Resource, path: str) -> harness.Resource:
    assert resource.is_secret(path), f"{resource.name}: {path} is not secret to begin with"
    kept = [p for p in resource.secret_paths if p != path and not p.startswith(path + ".")]
    return replace(resource, secret_paths=kept)


def secret_paths_after(new_props: Any) -> set[str]:
    """Which paths the engine would receive as secret from a remediation."""
    return set(harness._secret_paths(serialize_properties(new_props)))


PASSWORD_CASES = [
    ("pulumi:providers:postgresql", "admin", "password"),
    (policies.ROLE, "app", "password"),
    (policies.CONTAINER, "postgres", "envs[1]"),
    ("command:local:Command", "push", "environment.DATABASE_URL"),
]


@pytest.mark.parametrize(("type_", "name", "path"), PASSWORD_CASES)
def test_sample_plaintext_password_is_remediated_to_secret(
    sample: harness.Run, type_: str, name: str, path: str
) -> None:
    original = sample.one(type_, name)
    outcome = analyze(unsecret(original, path), sample)
    assert outcome.violations == []
    assert set(outcome.remediations) == {"no-plaintext-password"}
    new_props = outcome.remediations["no-plaintext-password"]
    assert path in secret_paths_after(new_props)
    # Nothing else changes: the remediated inputs are the recorded ones.
    assert harness._plain(serialize_properties(new_props)) == original.inputs


# --- the real programs: compliant, and their own resources caught ----------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_passes_every_policy(stacks: StackRuns, stack: str) -> None:
    run = stacks[stack]
    for resource in run.resources:
        outcome = analyze(resource, run)
        assert outcome.violations == [], (resource.type, resource.name)
        assert outcome.remediations == {}, (resource.type, resource.name)


def stack_resources(run: harness.Run, type_: str) -> Iterator[harness.Resource]:
    found = run.of_type(type_)
    assert found, f"the program registers no {type_}"
    yield from found


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize(("key", "value", "attribute"), ROLE_CASES[:5])
def test_stack_roles_with_elevated_attribute_are_reported(
    stacks: StackRuns, stack: str, key: str, value: Any, attribute: str
) -> None:
    run = stacks[stack]
    for role in stack_resources(run, policies.ROLE):
        message = only_violation(
            analyze(mutated(role, setter(key, value)), run),
            "postgresql-role-no-elevated-attributes",
        )
        assert attribute in message


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_schemas_dropped_with_cascade_are_reported(stacks: StackRuns, stack: str) -> None:
    run = stacks[stack]
    for schema in stack_resources(run, policies.SCHEMA):
        only_violation(
            analyze(mutated(schema, setter("dropCascade", True)), run),
            "postgresql-schema-no-drop-cascade",
        )


@pytest.mark.parametrize(("change", "options", "policy_name"), RDS_CASES)
def test_prod_rds_instance_weakened_is_reported(
    stacks: StackRuns, change: Any, options: dict[str, Any], policy_name: str
) -> None:
    run = stacks["prod"]
    for instance in stack_resources(run, policies.RDS_INSTANCE):
        only_violation(analyze(mutated(instance, change, **options), run), policy_name)


@pytest.mark.parametrize("change", CONTAINER_CASES)
def test_dev_container_port_off_loopback_is_reported(stacks: StackRuns, change: Any) -> None:
    run = stacks["dev"]
    for container in stack_resources(run, policies.CONTAINER):
        only_violation(analyze(mutated(container, change), run), "docker-ports-on-loopback")
        assert analyze(mutated(container, change), run, {"allowPublicPorts": True}).violations == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_role_passwords_made_plaintext_are_remediated(stacks: StackRuns, stack: str) -> None:
    run = stacks[stack]
    with_password = [r for r in stack_resources(run, policies.ROLE) if "password" in r.inputs]
    assert with_password, "no role carries a password"
    for role in with_password:
        outcome = analyze(unsecret(role, "password"), run)
        assert set(outcome.remediations) == {"no-plaintext-password"}
        assert "password" in secret_paths_after(outcome.remediations["no-plaintext-password"])


def test_dev_container_password_made_plaintext_is_remediated(stacks: StackRuns) -> None:
    """The admin password reaches the container as `POSTGRES_PASSWORD=...`:
    sent without its secret mark, the remediation marks that entry."""
    run = stacks["dev"]
    (container,) = stack_resources(run, policies.CONTAINER)
    envs = container.inputs["envs"]
    (entry,) = [i for i, env in enumerate(envs) if env.startswith("POSTGRES_PASSWORD=")]
    sent_as = [p for p in container.secret_paths if p in ("envs", f"envs[{entry}]")]
    assert sent_as, "the dev container sends its password in plaintext"
    plaintext = container
    for path in sent_as:
        plaintext = unsecret(plaintext, path)
    outcome = analyze(plaintext, run)
    assert f"envs[{entry}]" in secret_paths_after(outcome.remediations["no-plaintext-password"])


# --- the pack as the engine talks to it: served over gRPC ------------------


@pytest.fixture(scope="module")
def served_pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """`policy/__main__.py` run the way the CLI runs it (`python policy`),
    answering the analyzer protocol on the port it prints."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=10)


def analyzer_request(type_: str, props: dict[str, Any]) -> analyzer_pb2.AnalyzeRequest:
    properties = struct_pb2.Struct()
    properties.update(props)
    return analyzer_pb2.AnalyzeRequest(
        type=type_,
        properties=properties,
        urn=f"urn:pulumi:dev::naap-db::{type_}::sample",
        name="sample",
        options=analyzer_pb2.AnalyzerResourceOptions(),
    )


def test_served_pack_describes_its_policies(served_pack: Any) -> None:
    info = served_pack.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "naap-db"
    levels = {policy.name: policy.enforcementLevel for policy in info.policies}
    assert set(levels) == {policy.name for policy in POLICIES}
    assert levels.pop("no-plaintext-password") == analyzer_pb2.REMEDIATE
    assert set(levels.values()) == {analyzer_pb2.MANDATORY}


def test_served_pack_blocks_a_superuser_role(served_pack: Any) -> None:
    password = {**SECRET_SIG, "value": SAMPLE_VERIFIER}
    compliant = {"name": "naap_app", "login": True, "password": password}
    assert not served_pack.Analyze(analyzer_request(policies.ROLE, compliant)).diagnostics
    response = served_pack.Analyze(
        analyzer_request(policies.ROLE, {**compliant, "superuser": True})
    )
    (diagnostic,) = response.diagnostics
    assert diagnostic.policyName == "postgresql-role-no-elevated-attributes"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "SUPERUSER" in diagnostic.message


def test_served_pack_marks_a_plaintext_password_secret(served_pack: Any) -> None:
    secret_role = {"name": "naap_app", "password": {**SECRET_SIG, "value": "pw"}}
    assert not served_pack.Remediate(analyzer_request(policies.ROLE, secret_role)).remediations
    plain_role = {"name": "naap_app", "password": "pw"}
    (remediation,) = served_pack.Remediate(analyzer_request(policies.ROLE, plain_role)).remediations
    assert remediation.policyName == "no-plaintext-password"
    assert json_format.MessageToDict(remediation.properties) == {
        "name": "naap_app",
        "password": {**SECRET_SIG, "value": "pw"},
    }


def test_served_pack_takes_allow_public_ports_from_policy_config(served_pack: Any) -> None:
    container = {"image": "postgres:16", "ports": [{"internal": 5432, "external": 5432}]}
    (diagnostic,) = served_pack.Analyze(analyzer_request(policies.CONTAINER, container)).diagnostics
    assert diagnostic.policyName == "docker-ports-on-loopback"
    allow = struct_pb2.Struct()
    allow.update({"allowPublicPorts": True})
    config = analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY, properties=allow)
    served_pack.Configure(
        analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"docker-ports-on-loopback": config})
    )
    try:
        assert not served_pack.Analyze(analyzer_request(policies.CONTAINER, container)).diagnostics
    finally:
        served_pack.Configure(analyzer_pb2.ConfigureAnalyzerRequest())


# --- a pooler and read replicas (issue 24) ------------------------------------

SCALED = {
    "dev": {"naap-db:pooler": {"kind": "container"}},
    "prod": {"naap-db:pooler": {"kind": "rds"}, "naap-db:replicas": 2},
}
# What a replica keeps from the primary's rules: a replica has no final
# snapshot, no backups of its own and the primary's engine version.
REPLICA_CASES = [
    case
    for case in RDS_CASES
    if case[2] not in ("rds-backup-retention", "rds-engine-version-pinned", "rds-final-snapshot")
]


@pytest.fixture(scope="module")
def scaled(lambda_zip: Path) -> dict[str, harness.Run]:
    runs = {}
    for stack, extra in SCALED.items():
        overrides = dict(StackRuns(lambda_zip)._overrides(stack), **extra)
        runs[stack] = harness.run_program(stack, overrides)
    return runs


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_with_a_pooler_and_replicas_passes_every_policy(
    scaled: dict[str, harness.Run], stack: str
) -> None:
    run = scaled[stack]
    for resource in run.resources:
        outcome = analyze(resource, run)
        assert outcome.violations == [], (resource.type, resource.name)


@pytest.mark.parametrize(("change", "options", "policy_name"), REPLICA_CASES)
def test_a_weakened_replica_is_reported_like_the_primary(
    scaled: dict[str, harness.Run], change: Any, options: dict[str, Any], policy_name: str
) -> None:
    run = scaled["prod"]
    replicas = [r for r in run.of_type(policies.RDS_INSTANCE) if r.inputs.get("replicateSourceDb")]
    assert len(replicas) == 2
    for replica in replicas:
        only_violation(analyze(mutated(replica, change, **options), run), policy_name)


def test_the_primary_still_needs_its_final_snapshot_and_backups(
    scaled: dict[str, harness.Run],
) -> None:
    run = scaled["prod"]
    (primary,) = [
        r for r in run.of_type(policies.RDS_INSTANCE) if not r.inputs.get("replicateSourceDb")
    ]
    only_violation(
        analyze(mutated(primary, setter("skipFinalSnapshot", True)), run), "rds-final-snapshot"
    )


def test_the_pgbouncer_container_publishes_on_loopback_only(
    scaled: dict[str, harness.Run],
) -> None:
    run = scaled["dev"]
    pooler = run.one(policies.CONTAINER, "pooler")
    change = port_ip("0.0.0.0")
    only_violation(analyze(mutated(pooler, change), run), "docker-ports-on-loopback")

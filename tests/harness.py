"""Runs the real Pulumi program (`__main__.py`) for a stack under
`pulumi.runtime.set_mocks`, fed with the real `Pulumi.yaml` and
`Pulumi.<stack>.yaml` config, and records everything it registers.

Options such as `protect`, `retain_on_delete`, `depends_on` and
`ignore_changes` do not reach `MockResourceArgs`, so a `MockMonitor` subclass
reads them off the raw registration request. Secret-ness is read off the wire
format too: a value is secret when the SDK sent it wrapped in the secret
signature, exactly what the engine would persist encrypted.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import runpy
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "naap-db"
SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig
FAKE_SECRET = "mock-secret-value"

CallHandler = Callable[[dict[str, Any]], dict[str, Any]]
ResourceHandler = Callable[["Resource"], dict[str, Any]]


@dataclass
class Resource:
    """One registered resource: what the program declared, as the engine sees it."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    provider: str
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    dependencies: list[str]
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    secret_paths: list[str]
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)

    def is_secret(self, path: str) -> bool:
        """Whether the input at `path` (dotted, e.g. `password` or `envs`) or
        anything inside it was sent as a secret."""
        return any(p == path or p.startswith(path + ".") for p in self.secret_paths)

    @property
    def provider_urn(self) -> str:
        return (
            self.provider.split("::" + self.provider.rsplit("::", 1)[-1])[0]
            if self.provider
            else ""
        )


@dataclass
class Run:
    """What one program run registered."""

    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    urns: dict[str, Resource]
    error: BaseException | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every invoke the program made: (token, args)."""

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Resource:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        assert len(found) == 1, (
            f"expected one {type_} named *{name_contains}*, got {[r.name for r in found]}"
        )
        return found[0]

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, got {len(found)}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}

    def by_urn(self, urn: str) -> Resource:
        return self.urns[urn]

    def waits_for(self, resource: Resource) -> set[str]:
        """Every URN `resource` waits for, directly or through its
        dependencies (the engine waits transitively)."""
        seen: set[str] = set()
        pending = list(resource.dependencies)
        while pending:
            urn = pending.pop()
            if urn not in seen:
                seen.add(urn)
                pending.extend(self.urns[urn].dependencies if urn in self.urns else ())
        return seen


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs as state, add what a provider would compute
    (ids, endpoints, secret results), and answer invokes."""

    def __init__(
        self,
        call_handlers: Mapping[str, CallHandler] | None = None,
        resource_handlers: Mapping[str, ResourceHandler] | None = None,
    ) -> None:
        self.call_handlers = dict(DEFAULT_CALLS, **(call_handlers or {}))
        self.resource_handlers = dict(DEFAULT_STATES, **(resource_handlers or {}))
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.pending: dict[tuple[str, str], Resource] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        record = self.pending.get((args.typ, args.name))
        handler = self.resource_handlers.get(args.typ)
        if handler is not None and record is not None:
            state.update(handler(record))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.calls.append((args.token, dict(args.args)))
        handler = self.call_handlers.get(args.token)
        # No check failures: an empty list (the SDK iterates it; None breaks).
        return (handler(dict(args.args)) if handler else dict(args.args)), []


def secret(value: Any) -> dict[str, Any]:
    """A value a mock returns as secret, the way a provider marks it."""
    return {SECRET_SIG: SECRET_VALUE, "value": value}


DEFAULT_CALLS: dict[str, CallHandler] = {
    "aws:secretsmanager/getSecretVersion:getSecretVersion": lambda args: {
        **args,
        "arn": args.get("secretId", ""),
        "secretString": json.dumps({"username": "naap_admin", "password": FAKE_SECRET}),
    },
    "aws:index/getCallerIdentity:getCallerIdentity": lambda args: {
        "accountId": "123456789012",
        "arn": "arn:aws:iam::123456789012:user/test",
        "userId": "AIDTEST",
        "id": "123456789012",
    },
    "aws:index/getRegion:getRegion": lambda args: {
        "name": "us-east-1",
        "region": "us-east-1",
        "id": "us-east-1",
    },
    "aws:index/getPartition:getPartition": lambda args: {
        "partition": "aws",
        "dnsSuffix": "amazonaws.com",
        "id": "aws",
    },
}


def _instance_address(resource: Resource) -> str:
    """The primary's mock address, or a replica's own (named after its identifier)."""
    if resource.inputs.get("replicateSourceDb"):
        return f"{resource.inputs.get('identifier')}.abc123.us-east-1.rds.amazonaws.com"
    return "naap.abc123.us-east-1.rds.amazonaws.com"


DEFAULT_STATES: dict[str, ResourceHandler] = {
    "random:index/randomPassword:RandomPassword": lambda r: {
        "result": secret(
            f"pw-{r.name}-{'-'.join(str(v) for v in (r.inputs.get('keepers') or {}).values())}"
        ),
        "bcryptHash": secret("bcrypt"),
    },
    # AWS completes a name prefix with a unique suffix.
    "aws:rds/parameterGroup:ParameterGroup": lambda r: {
        "name": r.inputs.get("name") or f"{r.inputs.get('namePrefix', '')}0001"
    },
    "aws:rds/subnetGroup:SubnetGroup": lambda r: {
        "name": r.inputs.get("name") or f"{r.inputs.get('namePrefix', '')}0001"
    },
    "aws:cloudwatch/eventRule:EventRule": lambda r: {"name": r.inputs.get("name") or r.name},
    "aws:sns/topic:Topic": lambda r: {"arn": f"arn:aws:sns:us-east-1:123456789012:{r.name}"},
    # The final snapshot's suffix (components/rds.py).
    "random:index/randomId:RandomId": lambda r: {"hex": "0a1b2c3d", "b64Url": "ChssPQ"},
    "aws:rds/instance:Instance": lambda r: {
        "resourceId": "db-MOCKRESOURCEID0123456789",
        # A read replica gets an address of its own (naapdb.replicas).
        "address": _instance_address(r),
        "endpoint": f"{_instance_address(r)}:5432",
        "port": 5432,
        "arn": f"arn:aws:rds:us-east-1:123456789012:db:{r.name}",
        "masterUserSecrets": [
            {
                "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1",
                "kmsKeyId": "alias/aws/secretsmanager",
                "secretStatus": "active",
            }
        ],
    },
    # Secrets Manager names a secret's ARN after its name plus six characters.
    "aws:secretsmanager/secret:Secret": lambda r: {
        "arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        f"{r.inputs.get('name') or r.name}-a1B2c3",
        "name": r.inputs.get("name") or r.name,
    },
    "aws:lambda/function:Function": lambda r: {
        "arn": f"arn:aws:lambda:us-east-1:123456789012:function:{r.name}",
        "name": r.inputs.get("name") or r.name,
    },
    "aws:iam/role:Role": lambda r: {
        "arn": f"arn:aws:iam::123456789012:role/{r.name}",
        "name": r.inputs.get("name") or r.name,
    },
    "docker:index/remoteImage:RemoteImage": lambda r: {
        "imageId": f"sha256:mock-{r.inputs.get('name', '')}",
        "repoDigest": f"{r.inputs.get('name', '')}@sha256:mock",
    },
    "aws:rds/proxy:Proxy": lambda r: {
        "endpoint": f"{r.inputs.get('name') or r.name}.proxy-abc123.us-east-1.rds.amazonaws.com",
        "arn": f"arn:aws:rds:us-east-1:123456789012:db-proxy:prx-{r.name}",
        "name": r.inputs.get("name") or r.name,
    },
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup": lambda r: {"name": "default"},
    "aws:s3/bucket:Bucket": lambda r: {
        "arn": f"arn:aws:s3:::{r.inputs.get('bucket') or r.name}",
        "bucket": r.inputs.get("bucket") or r.name,
    },
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": lambda r: {
        "arn": "arn:aws:iam::123456789012:oidc-provider/"
        + str(r.inputs.get("url", "")).removeprefix("https://")
    },
    "aws:kms/key:Key": lambda r: {
        "arn": f"arn:aws:kms:us-east-1:123456789012:key/mock-{r.name}",
        "keyId": f"mock-{r.name}",
    },
    "aws:ec2/securityGroup:SecurityGroup": lambda r: {
        "arn": f"arn:aws:ec2:us-east-1:123456789012:security-group/{r.name}"
    },
}


class RecordingMonitor(mocks.MockMonitor):
    """A MockMonitor that keeps each registration's options and secret paths."""

    def __init__(self, recording_mocks: RecordingMocks) -> None:
        super().__init__(recording_mocks)
        self.recording_mocks = recording_mocks
        self.records: list[Resource] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object) if request.object else {}
            record = Resource(
                type=request.type,
                name=request.name,
                urn=self.make_urn(request.parent, request.type, request.name),
                inputs=_plain(raw),
                custom=bool(request.custom),
                parent=request.parent,
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                dependencies=list(request.dependencies),
                ignore_changes=list(request.ignoreChanges),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                secret_paths=sorted(_secret_paths(raw)),
            )
            self.recording_mocks.pending[(request.type, request.name)] = record
            self.records.append(record)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            record.id = response.id
            record.state = _plain(json_format.MessageToDict(response.object))
        return response


def _secret_paths(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            yield path
            yield from _secret_paths(value.get("value"), path)
            return
        for key, item in value.items():
            yield from _secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _secret_paths(item, f"{path}[{index}]")


def _plain(value: Any) -> Any:
    """Inputs without the secret wrappers, for assertions on values."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return _plain(value.get("value"))
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def stack_config(
    stack: str, overrides: Mapping[str, Any] | None = None, project_dir: Path = ROOT
) -> tuple[dict[str, str], list[str]]:
    """The config the engine would pass for a stack: `Pulumi.yaml`'s project
    config overlaid by `Pulumi.<stack>.yaml` and `overrides` (full keys, e.g.
    `naap-db:server`; None removes a key). `secure:` values become a fake
    plaintext and are listed as secret keys, as the engine decrypts them."""
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    stack_doc = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    name = str(project.get("name") or PROJECT)
    merged: dict[str, Any] = {}
    for key, value in (project.get("config") or {}).items():
        if isinstance(value, dict) and ("value" in value or "default" in value):
            value = value.get("value", value.get("default"))
        merged[_full_key(key, name)] = value
    for key, value in (stack_doc.get("config") or {}).items():
        merged[_full_key(key, name)] = value
    for key, value in (overrides or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in merged.items():
        decoded, is_secret = _decrypt(value)
        if is_secret:
            secret_keys.append(key)
        config[key] = decoded if isinstance(decoded, str) else json.dumps(decoded)
    return config, secret_keys


def _full_key(key: str, project: str = PROJECT) -> str:
    return key if ":" in key else f"{project}:{key}"


def _decrypt(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return FAKE_SECRET, True
        items = {k: _decrypt(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, any(s for _, s in items.values())
    if isinstance(value, list):
        items_list = [_decrypt(v) for v in value]
        return [v for v, _ in items_list], any(s for _, s in items_list)
    if isinstance(value, bool):
        return ("true" if value else "false"), False
    return (value if isinstance(value, str) else json.dumps(value)), False


def run_program(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    preview: bool = False,
    call_handlers: Mapping[str, CallHandler] | None = None,
    resource_handlers: Mapping[str, ResourceHandler] | None = None,
    raise_errors: bool = True,
    restore_collector: bool = True,
    program: Callable[[], Any] | None = None,
    project_dir: Path = ROOT,
) -> Run:
    """Run `__main__.py` (or `program`, e.g. one component alone) for `stack`
    under mocks and return what it registered; `project_dir` names another
    Pulumi project of the repository (e.g. `ci-aws/`)."""
    config, secret_keys = stack_config(stack, overrides, project_dir)
    project = str(yaml.safe_load((project_dir / "Pulumi.yaml").read_text()).get("name"))
    recording_mocks = RecordingMocks(call_handlers, resource_handlers)
    monitor = RecordingMonitor(recording_mocks)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_all_config(config, secret_keys)
    settings.ROOT.set(None)  # a fresh Stack per run, or the next stack nests under the last
    mocks.set_mocks(recording_mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    error: BaseException | None = None
    sys.path.insert(0, str(ROOT))
    # The program tunes the garbage collector and its SIGINT for its own
    # (one-shot) process; the test session gets its own back afterwards.
    collecting = gc.isenabled()
    interrupt = signal.getsignal(signal.SIGINT)
    try:
        _sync_await(
            pulumi.runtime.stack.run_pulumi_func(
                program
                or (lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"))
            )
        )
    except BaseException as caught:
        error = caught
    finally:
        sys.path.remove(str(ROOT))
        signal.signal(signal.SIGINT, interrupt)
        # Re-enabling makes the next allocation scan every object the run
        # left behind; a one-shot process (the benchmark's, like the real
        # program's) just exits instead.
        if collecting and restore_collector:
            gc.enable()
    outputs, secret_outputs = ({}, set()) if error else _stack_outputs()
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_all_config({}, [])
    if error is not None and raise_errors:
        raise error
    return Run(
        resources=list(monitor.records),
        outputs=outputs,
        secret_outputs=secret_outputs,
        urns={r.urn: r for r in monitor.records},
        error=error,
        calls=list(recording_mocks.calls),
    )


def _stack_outputs() -> tuple[dict[str, Any], set[str]]:
    stack = settings.get_root_resource()
    values: dict[str, Any] = {}
    secret_names: set[str] = set()
    for name, value in getattr(stack, "outputs", {}).items():
        output = pulumi.Output.from_input(value)
        values[name] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_names.add(name)
    return values, secret_names


def stack_overrides(stack: str, lambda_zip: Path, **extra: Any) -> dict[str, Any]:
    """The stack's own config plus `extra`, prod's Lambda archive pointed at
    the suite's stand-in zip (tests/conftest.py)."""
    found: dict[str, Any] = dict(extra)
    if stack == "prod":
        doc = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
        found["naap-db:credentials"] = {
            **doc["config"]["naap-db:credentials"],
            "lambdaArchive": str(lambda_zip),
        }
    return found

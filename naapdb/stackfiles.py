"""Reads a stack's config the way the Pulumi engine would, without the
engine: project-level `config:` of `Pulumi.yaml` overlaid by the stack file
`Pulumi.<stack>.yaml`. Encrypted values stay encrypted (`SECRET`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from naapdb.errors import ConfigError
from naapdb.project import PROJECT_FILE, find_project_root, project_value, read_yaml
from naapdb.settings import NAMESPACE, SECRET, StackSettings, parse_settings


def stack_file(root: Path, stack: str) -> Path:
    """Where a stack's config lives."""
    return root / f"Pulumi.{stack}.yaml"


def read_raw_config(root: Path, stack: str) -> dict[str, Any]:
    """The stack's `naap-db:*` config, keys without the namespace."""
    project = _load_yaml(root / PROJECT_FILE)
    path = stack_file(root, stack)
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise ConfigError(
            str(path),
            f"no such stack file; the stacks of {root} are {', '.join(known) or 'none'} "
            f"(a new stack's file appears with `pulumi config set --stack {stack} ...`)",
        )
    stack_doc = _load_yaml(path)
    raw: dict[str, Any] = {}
    for source, section in ((root / PROJECT_FILE, project), (path, stack_doc)):
        config = section.get("config") or {}
        if not isinstance(config, Mapping):
            raise ConfigError(f"{source.name}: config", "must be a mapping of keys to values")
        for key, value in config.items():
            name = _own_key(str(key))
            if name is None:
                continue
            if source.name == PROJECT_FILE:
                value = project_value(value)
            raw[name] = _decode(value)
    return raw


def load_stack_settings(stack: str, root: Path | None = None) -> StackSettings:
    """Validated settings of a stack from its files."""
    root = root or find_project_root()
    return parse_settings(stack, read_raw_config(root, stack))


def _own_key(key: str) -> str | None:
    namespace, sep, name = key.partition(":")
    if not sep:
        return key  # a bare key belongs to the project
    return name if namespace == NAMESPACE else None


def _decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return SECRET
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def _load_yaml(path: Path) -> Mapping[str, Any]:
    document = read_yaml(path)
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(str(path), "must be a YAML mapping")
    return document

"""Reads a stack's config the way the Pulumi engine would, without the
engine: project-level `config:` of `Pulumi.yaml` overlaid by the stack file
`Pulumi.<stack>.yaml`. Encrypted values stay encrypted (`SECRET`).

It also refuses what the Pulumi CLI silently ignores, and so would turn a
typo into a default: a top-level key a stack file cannot have (`confg:`
drops the whole config), and a config key whose namespace is a near miss of
`naap-db` (`naapdb:limits` leaves every limit at its default)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from difflib import get_close_matches
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
    check_stack_document(path, stack_doc)
    check_namespaces(root / PROJECT_FILE, project.get("config"))
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


# The top-level keys of a stack file (the CLI's workspace.ProjectStack).
STACK_FILE_KEYS = ("config", "environment", "secretsprovider", "encryptedkey", "encryptionsalt")


def check_stack_file(root: Path, stack: str) -> None:
    """Refuse a stack file's unknown top-level keys and near-miss namespaces
    (the program's own check: the engine passes neither on)."""
    path = stack_file(root, stack)
    if path.is_file():
        check_stack_document(path, _load_yaml(path))
    project = root / PROJECT_FILE
    if project.is_file():
        check_namespaces(project, _load_yaml(project).get("config"))


def check_stack_document(path: Path, document: Mapping[str, Any]) -> None:
    """Refuse a top-level key the CLI would ignore, and near-miss namespaces."""
    for key in document:
        if str(key) not in STACK_FILE_KEYS:
            close = get_close_matches(str(key), STACK_FILE_KEYS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"{path}: {key}",
                f"unknown top-level key, which Pulumi would ignore; {hint}a stack file "
                f"holds {', '.join(STACK_FILE_KEYS)}",
            )
    check_namespaces(path, document.get("config"))


def check_namespaces(path: Path, config: Any) -> None:
    """Refuse a config key whose namespace is a near miss of `naap-db`."""
    if not isinstance(config, Mapping):
        return
    for key in config:
        namespace, sep, name = str(key).partition(":")
        if sep and namespace != NAMESPACE and _near_miss(namespace):
            raise ConfigError(
                f"{path}: {key}",
                f"{namespace!r} is not this project's namespace, so Pulumi would hand the "
                f"key to nobody; write {NAMESPACE}:{name}",
            )


def _near_miss(namespace: str) -> bool:
    """Whether `namespace` looks like a misspelt `naap-db` (case, separators,
    a letter or two)."""
    squashed = re.sub(r"[^a-z0-9]", "", namespace.lower())
    wanted = re.sub(r"[^a-z0-9]", "", NAMESPACE)
    return bool(get_close_matches(squashed, [wanted], n=1, cutoff=0.7))


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

"""The one place `pulumi.Config` is read: the stack's `naap-db:*` config is
handed to the same validator the command line uses (`naapdb.settings`), so
bad config fails `pulumi preview` before any resource is registered, with the
message `python -m naapdb plan` prints."""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from naapdb.errors import ConfigError
from naapdb.project import find_project_root
from naapdb.settings import ADMIN_PASSWORD_KEY, NAMESPACE, SECRET, StackSettings, parse_settings
from naapdb.stackfiles import check_stack_file


def load_settings() -> StackSettings:
    """Validated settings of the running stack; a bad value stops the program
    with one line naming the key (no traceback). The stack file is read too,
    for what the engine drops without a word: an unknown top-level key, a
    near miss of the `naap-db` namespace."""
    try:
        check_stack_file(find_project_root(), pulumi.get_stack())
        return parse_settings(pulumi.get_stack(), _raw_config())
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None


def admin_password() -> pulumi.Output[str] | None:
    """The admin password of an external server, secret from end to end."""
    return pulumi.Config(NAMESPACE).get_secret(ADMIN_PASSWORD_KEY)


def aws_region() -> str | None:
    """The region the AWS provider deploys to (`aws:region`)."""
    return pulumi.Config("aws").get("region")


def _raw_config() -> dict[str, Any]:
    """Every `naap-db:*` key the engine passed, decoded the way the stack files
    read (objects and lists from JSON); secret scalars become `SECRET`."""
    config: dict[str, Any] = dict(runtime_config.get_config_env())
    config.update(runtime_config.CONFIG.get())
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for full_key, value in config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix) :]
        decoded = _decode(value)
        if runtime_config.is_config_secret(full_key) and not isinstance(decoded, dict):
            decoded = SECRET
        raw[key] = decoded
    return raw


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value

"""The stack files hold no secret in plaintext: every value under a key that
looks like a password, secret or token is a `secure:` value. Dev encrypts
with a passphrase, prod with a KMS key."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb.stackfiles import load_stack_settings
from tests.harness import ROOT

SECRET_LOOKING = re.compile(r"password|passwd|secret|token|passphrase|private.?key", re.I)
# Top-level keys of a Pulumi stack file that name how secrets are encrypted,
# not secrets: the provider URL, and the salt / data key (themselves encrypted).
STACK_FILE_KEYS = frozenset({"secretsprovider", "encryptionsalt", "encryptedkey"})


def stack_files(root: Path = ROOT) -> list[Path]:
    return sorted(root.glob("Pulumi*.yaml")) + sorted(root.glob("Pulumi*.yml"))


def is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def plaintext_secrets(document: Any, path: str = "", under_secret: bool = False) -> Iterator[str]:
    """Paths of values that look secret and are not `secure:`."""
    if is_secure(document):
        return
    if isinstance(document, dict):
        for key, value in document.items():
            name = str(key)
            if not path and name in STACK_FILE_KEYS:
                continue
            yield from plaintext_secrets(
                value,
                f"{path}.{name}" if path else name,
                under_secret or bool(SECRET_LOOKING.search(name)),
            )
    elif isinstance(document, list):
        for index, item in enumerate(document):
            yield from plaintext_secrets(item, f"{path}[{index}]", under_secret)
    elif under_secret and document not in (None, ""):
        yield path


def scan(path: Path) -> list[str]:
    return [
        f"{path.name}: {found}" for found in plaintext_secrets(yaml.safe_load(path.read_text()))
    ]


def test_the_project_has_its_stack_files() -> None:
    names = {path.name for path in stack_files()}
    assert {"Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"} <= names


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: p.name)
def test_no_stack_file_holds_a_plaintext_secret(path: Path) -> None:
    assert scan(path) == []


def test_the_scan_finds_plaintext_secrets(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text(
        "secretsprovider: passphrase\n"
        "config:\n"
        "  naap-db:adminPassword: hunter2hunter2\n"
        "  naap-db:apiToken:\n"
        "    secure: AAABAKz1\n"
        "  naap-db:server:\n"
        "    kind: external\n"
        "    host: db.example\n"
        "    password: postgres\n"
        "  naap-db:secrets:\n"
        "    value:\n"
        "      - plain-in-a-list\n"
        "  aws:secretKey: AKIA-not-secure\n"
    )
    assert stack_files(tmp_path) == [bad]
    assert scan(bad) == [
        "Pulumi.bad.yaml: config.naap-db:adminPassword",
        "Pulumi.bad.yaml: config.naap-db:server.password",
        "Pulumi.bad.yaml: config.naap-db:secrets.value[0]",
        "Pulumi.bad.yaml: config.aws:secretKey",
    ]


def test_dev_encrypts_with_a_passphrase_and_prod_with_kms() -> None:
    dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    # No secretsprovider means the passphrase provider (PULUMI_CONFIG_PASSPHRASE).
    assert dev.get("secretsprovider", "passphrase") == "passphrase"
    assert str(prod["secretsprovider"]).startswith("awskms://")


def test_a_stack_file_reads_as_the_pulumi_cli_reads_it(tmp_path: Path) -> None:
    """YAML 1.2, as Pulumi's Go yaml.v3: `pulumi config set --path
    naap-db:push.mode off` writes `mode: off`, a string there (YAML 1.1 would
    make it false and the push mode invalid); true/false stay booleans."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.edge.yaml").write_text(
        "config:\n"
        "  naap-db:server:\n    kind: container\n    keepDataOnDestroy: false\n"
        "  naap-db:push:\n    mode: off\n"
    )
    settings = load_stack_settings("edge", tmp_path)
    assert settings.push.mode == "off"
    assert settings.server.keep_data_on_destroy is False  # type: ignore[union-attr]

"""Every catalogue rejection names its key, the value and the rule."""

from __future__ import annotations

from typing import Any

import pytest

from naapdb import names
from naapdb.catalog import parse_catalog
from naapdb.errors import ConfigError
from naapdb.stackfiles import load_stack_settings

BASE = {"plugin": "base", "schema": "public"}


def entries(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(BASE), *extra]


def rejected(raw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(raw)
    assert "\n" not in str(caught.value)
    return caught.value


def test_default_catalogue_is_the_eight_schemas_of_the_reference() -> None:
    catalog = load_stack_settings("dev").catalog
    assert catalog.schemas == (
        "public",
        "plugin_community",
        "plugin_wallet",
        "plugin_dashboard",
        "plugin_daydream",
        "plugin_gateway",
        "plugin_capacity",
        "plugin_developer_api",
    )
    assert catalog.plugins[0].plugin == "base"
    assert all(entry.reads == ("public",) for entry in catalog.plugins[1:])


@pytest.mark.parametrize(
    ("schema", "rule"),
    [
        ("Plugin_Upper", "not a valid identifier"),
        ("1starts_with_digit", "not a valid identifier"),
        ("has-dash", "not a valid identifier"),
        ("pg_catalog_copy", "starts with pg_"),
        ("information_schema", "reserved"),
        ("naap_meta", "reserved"),
    ],
)
def test_bad_schema_names(schema: str, rule: str) -> None:
    error = rejected(entries({"plugin": "x", "schema": schema}))
    assert error.key == "naap-db:plugins[1].schema"
    assert schema in error.message and rule in error.message


def test_bad_plugin_id() -> None:
    error = rejected(entries({"plugin": "My Plugin", "schema": "plugin_x"}))
    assert error.key == "naap-db:plugins[1].plugin"


def test_plugin_id_with_pg_prefix() -> None:
    error = rejected(entries({"plugin": "pg_stats", "schema": "plugin_x"}))
    assert error.key == "naap-db:plugins[1].plugin" and "pg_" in error.message


@pytest.mark.parametrize("plugin", ["app", "connect", "owner", "migrator", "readonly"])
def test_plugin_id_that_would_be_a_platform_role(plugin: str) -> None:
    error = rejected(entries({"plugin": plugin, "schema": f"plugin_{plugin}"}))
    assert error.key == "naap-db:plugins[1].plugin"
    assert f"'{plugin}' is reserved" in error.message and f"naap_{plugin}" in error.message


def test_derived_role_check_knows_the_connect_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the reserved list, the derived-role check still refuses the
    plugin whose login would be `naap_connect` (the group holding CONNECT)."""
    monkeypatch.setattr(names, "RESERVED_PLUGIN_IDS", frozenset())
    error = rejected(entries({"plugin": "connect", "schema": "plugin_connect"}))
    assert error.key == "naap-db:plugins[1].plugin"
    assert f"'{names.CONNECT_GROUP}' is already derived by the platform" in error.message


def test_schema_whose_derived_role_exceeds_63_bytes() -> None:
    schema = "s" * 54  # s..._migrator (its push login) is 63 bytes: fits
    assert parse_catalog(entries({"plugin": "long", "schema": schema}))
    error = rejected(entries({"plugin": "long", "schema": schema + "ss"}))
    assert error.key == "naap-db:plugins[1].schema"
    # the longest derived name, and by how much to shorten for every one of them
    assert f"'{schema}ss_migrator' is over 63 bytes; shorten the name by 2 bytes" in error.message


def test_a_schema_deriving_a_platform_role_is_refused() -> None:
    """Schema `naap` would own through `naap_owner`, the ledger's keeper."""
    error = rejected(entries({"plugin": "x", "schema": "naap"}))
    assert error.key == "naap-db:plugins[1].schema"
    assert "'naap_migrator' is already derived by the platform" in error.message


def test_plugin_whose_alternating_login_exceeds_63_bytes() -> None:
    plugin = "p" * 56  # naap_ + 56 = 61 bytes; with _a, 63 fits; 57 does not
    assert parse_catalog(entries({"plugin": plugin, "schema": "plugin_x"}))
    error = rejected(entries({"plugin": plugin + "p", "schema": "plugin_x"}))
    assert error.key == "naap-db:plugins[1].plugin" and "_a" in error.message


def test_duplicate_plugin() -> None:
    error = rejected(entries({"plugin": "base", "schema": "plugin_other"}))
    assert error.key == "naap-db:plugins[1].plugin"
    assert "already declared at naap-db:plugins[0]" in error.message


def test_duplicate_schema() -> None:
    error = rejected(entries({"plugin": "other", "schema": "public"}))
    assert error.key == "naap-db:plugins[1].schema" and "already owned" in error.message


def test_reads_unknown_schema() -> None:
    error = rejected(entries({"plugin": "x", "schema": "plugin_x", "reads": ["plugin_nope"]}))
    assert error.key == "naap-db:plugins[1].reads[0]" and "plugin_nope" in error.message


def test_reads_its_own_schema() -> None:
    error = rejected(entries({"plugin": "x", "schema": "plugin_x", "reads": ["plugin_x"]}))
    assert error.key == "naap-db:plugins[1].reads[0]" and "own schema" in error.message


def test_reads_not_a_list() -> None:
    error = rejected(entries({"plugin": "x", "schema": "plugin_x", "reads": "public"}))
    assert error.key == "naap-db:plugins[1].reads"


def test_unknown_key_in_entry() -> None:
    error = rejected(entries({"plugin": "x", "schema": "plugin_x", "owner": "me"}))
    assert error.key == "naap-db:plugins[1].owner" and "unknown key" in error.message


def test_missing_schema() -> None:
    error = rejected(entries({"plugin": "x"}))
    assert error.key == "naap-db:plugins[1].schema" and "required" in error.message


def test_empty_catalogue() -> None:
    assert "empty" in rejected([]).message


def test_catalogue_not_a_list() -> None:
    assert "list" in rejected({"plugin": "base"}).message


def test_missing_catalogue() -> None:
    assert "missing" in rejected(None).message


def test_entry_not_a_mapping() -> None:
    assert rejected(["public"]).key == "naap-db:plugins[0]"


def test_push_order_puts_public_first() -> None:
    catalog = parse_catalog(
        [{"plugin": "a", "schema": "plugin_a"}, {"plugin": "base", "schema": "public"}]
    )
    assert catalog.push_order() == ("public", "plugin_a")

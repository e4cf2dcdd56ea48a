"""The README and docs/reference.md against the code, so they cannot drift
apart: every key of the settings schema has a row with its default, every
command of the argument parser a row naming each option (its choices, its
default), every environment variable the code reads a row; and the error
examples are what the program prints for the mistake the text describes.

The keys and options are derived from the code (the settings dataclasses,
a probe of `parse_settings` for the top-level keys and any other section,
the argparse parsers, the `*_VARIABLE` constants), so a key or option added
later fails here until its row is written. Rows live in tables that follow
a marker comment: `<!-- keys: SECTION -->`, `<!-- commands -->`,
`<!-- environment -->`, in either file (the reference tables live in
docs/reference.md, the README keeps what a newcomer needs first)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from naapdb import catalog, connection, server_settings, settings
from naapdb.__main__ import build_parser, main
from naapdb.errors import ConfigError
from naapdb.stackfiles import read_raw_config

ROOT = Path(__file__).resolve().parent.parent
# The README and the reference it sends readers to, checked as one text.
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "reference.md")
README = "\n".join(path.read_text() for path in DOCUMENTS)
MARKER = re.compile(r"<!-- (keys: (?P<section>\S+)|commands|environment) -->")
CODE = re.compile(r"`([^`]+)`")
PROBE = "zzNoSuchKey"
REQUIRED = "required"
UNCHECKED = object()  # a default the README describes in words (None, computed)


# --- the README's tables -------------------------------------------------------------


def marked_tables(text: str = README) -> dict[str, list[list[str]]]:
    """Each marker's table: its rows (header and separator dropped) as cells."""
    tables: dict[str, list[list[str]]] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = MARKER.fullmatch(line.strip())
        if not match:
            continue
        name = match.group("section") or match.group(1)
        rows = []
        for row in lines[index + 1 :]:
            if not row.startswith("|"):
                break
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip()[1:-1])])
        assert name not in tables, (
            f"README/docs/reference.md: marker <!-- {match.group(1)} --> appears twice"
        )
        tables[name] = rows[2:]
    return tables


TABLES = marked_tables()


def first_code(cell: str) -> str:
    match = CODE.search(cell)
    assert match, f"README row starts without a `code` name: {cell!r}"
    return match.group(1)


def rows_by_key(section: str) -> dict[str, list[str]]:
    assert section in TABLES, (
        f"docs/reference.md has no table for the settings section {section!r}: add "
        f"<!-- keys: {section} --> and a table | key | default | meaning |"
    )
    return {first_code(row[0]): row for row in TABLES[section]}


# --- the settings schema, from the code -----------------------------------------------


def _known_keys(error: ConfigError) -> list[str] | None:
    match = re.search(r"known keys are (.+)$", error.message)
    return match.group(1).split(", ") if match else None


def top_level_keys() -> list[str]:
    """The keys `parse_settings` knows, as its refusal of an unknown one lists them."""
    with pytest.raises(ConfigError) as caught:
        settings.parse_settings("probe", {PROBE: 1})
    keys = _known_keys(caught.value)
    assert keys, caught.value
    return keys


def probed_section(key: str) -> list[str] | None:
    """The keys of a mapping-valued top-level key, from its refusal of an
    unknown key; None when the key is not such a mapping."""
    raw = read_raw_config(ROOT, "dev")
    raw[key] = {PROBE: 1}
    try:
        settings.parse_settings("dev", raw)
    except ConfigError as error:
        if error.key == f"{settings.NAMESPACE}:{key}.{PROBE}":
            return _known_keys(error)
    return None


def dataclass_keys(cls: Any, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A settings dataclass's config keys (camelCase) and their defaults."""
    keys: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        name = settings._camel(spec.name)
        if name in required or (
            spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        ):
            keys[name] = REQUIRED
        elif spec.default is not dataclasses.MISSING:
            keys[name] = spec.default
        else:
            keys[name] = spec.default_factory()  # type: ignore[misc]
    return keys


def schema_sections() -> dict[str, dict[str, Any]]:
    """Every section of the settings schema: its keys and their defaults."""
    top = top_level_keys()
    sections: dict[str, dict[str, Any]] = {"naap-db": dict.fromkeys(top, UNCHECKED)}
    entry_defaults = dataclass_keys(catalog.PluginEntry)
    sections["plugins[]"] = {key: entry_defaults.get(key, UNCHECKED) for key in catalog.ENTRY_KEYS}
    for kind, server_class in settings.SERVER_KINDS.items():
        required = server_settings.REQUIRED_SERVER_KEYS.get(kind, ())
        sections[f"server.{kind}"] = dataclass_keys(server_class, required)
    credentials = dataclass_keys(settings.CredentialSettings)
    credentials["rotation"] = UNCHECKED  # its default follows the server kind
    sections["credentials"] = credentials
    sections["push"] = dataclass_keys(settings.PushSettings)
    for key in top:
        if key not in sections and key not in ("plugins", "server"):
            keys = probed_section(key)
            if keys:  # a mapping the lead's README must describe key by key
                sections[key] = dict.fromkeys(keys, UNCHECKED)
    return sections


SECTIONS = schema_sections()


def rendered(default: Any) -> str | None:
    """How the README's default cell writes a default, or None when it is
    described in words."""
    if default is UNCHECKED or default is None or dataclasses.is_dataclass(default):
        return None
    if default == REQUIRED:
        return REQUIRED
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, enum.Enum):
        return str(default.value)
    if isinstance(default, tuple | list):
        return "[]" if not default else None
    if isinstance(default, Mapping):
        return "{}" if not default else None
    return str(default)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_config_key_has_a_row_with_its_default(section: str) -> None:
    schema = SECTIONS[section]
    documented = rows_by_key(section)
    missing = sorted(set(schema) - set(documented))
    stale = sorted(set(documented) - set(schema))
    assert not missing, f"README <!-- keys: {section} --> lacks a row for {missing}"
    assert not stale, f"README <!-- keys: {section} --> documents keys the code lacks: {stale}"
    for key, default in schema.items():
        row = documented[key]
        assert len(row) >= 3 and row[1] and row[2], f"README {section}.{key}: empty cells"
        expected = rendered(default)
        if expected is None:
            continue
        if expected == REQUIRED:
            assert REQUIRED in row[1], f"README {section}.{key}: default should say required"
            continue
        shown = {code.strip('"') for code in CODE.findall(row[1])}
        assert expected in shown, (
            f"README {section}.{key}: the default cell {row[1]!r} does not show `{expected}`"
        )


def test_the_key_probe_sees_what_the_parser_refuses() -> None:
    """The probe is only as good as the refusal it reads: a made-up key in a
    section is refused, naming the section's keys."""
    assert set(SECTIONS["naap-db"]) >= {"plugins", "server", "credentials", "push"}
    assert set(probed_section("push") or ()) == set(SECTIONS["push"])


# --- the commands ----------------------------------------------------------------------


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def command_rows() -> dict[str, list[str]]:
    assert "commands" in TABLES, "docs/reference.md has no <!-- commands --> table"
    return {first_code(row[0]).split()[0]: row for row in TABLES["commands"]}


def options_of(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if not isinstance(action, argparse._HelpAction):
            yield action


def test_every_command_has_a_row_and_every_row_a_command() -> None:
    assert set(command_rows()) == set(subcommands())


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_of_a_command_is_in_its_row(name: str) -> None:
    row = command_rows()[name]
    synopsis, text = first_code(row[0]).replace("\\|", "|"), " | ".join(row)
    for action in options_of(subcommands()[name]):
        if not action.option_strings:
            metavar = str(action.metavar or action.dest.upper())
            assert metavar in synopsis, f"README `{name}`: positional {metavar} missing"
            continue
        option = max(action.option_strings, key=len)
        assert re.search(rf"{re.escape(option)}\b", synopsis), f"README `{name}`: {option}"
        for choice in action.choices or ():
            assert str(choice) in synopsis, f"README `{name}`: {option} choice {choice}"
        if action.default not in (None, False, argparse.SUPPRESS):
            default = re.escape(str(action.default))
            assert re.search(rf"`{re.escape(option)}` default[^|]*`{default}`", text), (
                f'README `{name}`: say "`{option}` default `{action.default}`"'
            )


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_has_help_showing_its_default(name: str) -> None:
    parser = subcommands()[name]
    text = " ".join(parser.format_help().split())
    for action in options_of(parser):
        assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"default: {action.default})" in text or "default" in action.help, (
                f"{name} {action.option_strings[0]}: --help does not show its default"
            )


# --- the environment ---------------------------------------------------------------------


def variables_read_by_the_code() -> set[str]:
    """`DATABASE_URL` and every string constant named `*_VARIABLE` in the
    domain and the components."""
    found = {connection.DATABASE_URL}
    for path in [*ROOT.glob("naapdb/**/*.py"), *ROOT.glob("components/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.endswith("_VARIABLE")
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.add(node.value.value)
    return found


def test_every_environment_variable_has_a_row() -> None:
    assert "environment" in TABLES, "docs/reference.md has no <!-- environment --> table"
    documented = {first_code(row[0]) for row in TABLES["environment"]}
    assert documented == variables_read_by_the_code()


# --- the error examples ----------------------------------------------------------------


def example(prefix: str) -> str:
    """The ```text example of the README or docs/reference.md that starts with `prefix`."""
    blocks = re.findall(r"```text\n(.*?)```", README, flags=re.DOTALL)
    (block,) = [block.strip() for block in blocks if block.startswith(prefix)]
    return block


def project_copy(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def plan_error(project: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["plan", "--stack", "dev", "--project", str(project)]) == 2
    return capsys.readouterr().err.strip()


def test_the_bad_catalogue_example_is_what_plan_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """README: `schema: Plugin_Wallet` in wallet's entry, counted from 0."""
    project = project_copy(tmp_path)
    document = yaml.safe_load((project / "Pulumi.yaml").read_text())
    entries = document["config"]["naap-db:plugins"]["value"]
    (wallet,) = [entry for entry in entries if entry["plugin"] == "wallet"]
    wallet["schema"] = "Plugin_Wallet"
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(document))
    assert plan_error(project, capsys) == example("error: naap-db:plugins[")


def test_the_bad_image_example_is_what_plan_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("postgres:16 ", "postgres:latest "))
    assert plan_error(project, capsys) == example("error: naap-db:server.image")


def test_the_readme_is_read_in_five_minutes() -> None:
    """A newcomer's README: under 250 lines, the reference tables elsewhere."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 250
    assert "<!-- keys:" not in readme and "<!-- commands -->" not in readme
    for heading in ("## Run the tests", "## Bring up dev", "## Commands", "## Add a plugin"):
        assert heading in readme
    # A fresh machine's two commands open it: the test suite, then dev.
    first_blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL)[:2]
    assert first_blocks[0].startswith("bash scripts/test.sh"), first_blocks[0]
    assert "pulumi up --stack dev" in first_blocks[1], first_blocks[1]
    for document in re.findall(r"\]\((docs/[a-z]+\.md)", readme):
        assert (ROOT / document).is_file(), document


def test_the_readme_example_plugin_fits_devs_budget_with_room(tmp_path: Path) -> None:
    """Trap: the README's per-plugin example (`limits: {connections: 10}`)
    used to take dev's whole budget, so the next plugin was refused. It fits
    with the access model's one migrator login per plugin (connection limit 1
    each, issue 20) and another plugin with the default limits after it."""
    from naapdb.stackfiles import load_stack_settings

    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", README, re.S) if "invoices" in b]
    entry = yaml.safe_load(block)[0]
    project = project_copy(tmp_path)
    document = yaml.safe_load((project / "Pulumi.yaml").read_text())
    entries = document["config"]["naap-db:plugins"]["value"]
    entries += [entry, {"plugin": "next", "schema": "plugin_next", "reads": ["public"]}]
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(document))
    budget = load_stack_settings("dev", project).budget
    per_plugin_migrators = len(entries)
    assert budget.total + per_plugin_migrators <= budget.ceiling.available, budget

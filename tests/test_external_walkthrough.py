"""docs/external.md, run as written (`cli` marker): a user's first run on a
server they already run, in a copy of the project with no venv, through the
real engine put in the shell by the build script's one printed line.

Every command of the page's `bash` blocks runs in bash, in order, in the
copy: `pulumi` ones with the confirmations a user would type skipped
(`PULUMI_SKIP_CONFIRMATIONS`), the admin password on the stdin of the one
command that asks for it, `DB_HOST`/`DB_PORT`/`DB_ADMIN` naming a
PostgreSQL 16 this test starts (no TLS, so the page's `sslmode disable`
line applies). What a command exports stays exported for the next ones, as
in the reader's shell. The page's `yaml` block is appended to Pulumi.yaml,
as the page says. Where the engine is not built, everything skips saying how
to build it.

The walkthrough is also the first-run test: the first `pulumi up` creates
`./venv` from requirements.txt through the language host (pip installing
from a folder of wheels packed from the test venv: tests/wheelhouse.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from naapdb import names
from tests.engine import (
    BUILD_SCRIPT,
    OPERATION_TIMEOUT,
    ROOT,
    copy_project,
    engine_environment,
    require_engine,
)
from tests.pgserver import PgServer
from tests.test_readme_commands import Command, commands

pytestmark = pytest.mark.cli

PAGE = ROOT / "docs" / "external.md"
STACK = "mine"
# The lines that change the reader's shell for the commands after them.
SHELL_STATE = re.compile(r"^\s*(export\s|set -a)")


def steps(text: str) -> list[Command | str]:
    """The page in order: its shell commands, and each `yaml` block's text."""
    yaml_blocks = [
        (text[: block.start()].count("\n") + 1, block.group(1))
        for block in re.finditer(r"^```yaml\n(.*?)^```", text, flags=re.M | re.S)
    ]
    ordered: list[tuple[int, Command | str]] = [(c.line, c) for c in commands(text)]
    return [step for _, step in sorted([*ordered, *yaml_blocks], key=lambda item: item[0])]


STEPS = steps(PAGE.read_text())


@dataclass
class Reader:
    """A reader's shell on the page: where they are, what they exported."""

    path: Path
    environment: dict[str, str]
    password: str
    shell_state: list[str] = field(default_factory=list)
    done: int = 0

    def run(self, command: Command) -> subprocess.CompletedProcess[str]:
        script = "\n".join(["set -euo pipefail", *self.shell_state, command.code])
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.path,
            env=self.environment,
            input=self.password if "--secret naap-db:adminPassword" in command.code else "",
            capture_output=True,
            text=True,
            timeout=OPERATION_TIMEOUT,
            check=False,
        )
        assert result.returncode in command.allowed_exits, (
            f"docs/external.md line {command.line}: `{command.code}` exited "
            f"{result.returncode}:\n{result.stdout[-5000:]}\n{result.stderr[-3000:]}"
        )
        if SHELL_STATE.match(command.code):
            self.shell_state.append(command.code)
        return result

    def append_to_catalogue(self, entry: str) -> None:
        pulumi_yaml = self.path / "Pulumi.yaml"
        assert pulumi_yaml.read_text().endswith("reads: [public]\n"), "the catalogue is not last"
        pulumi_yaml.write_text(pulumi_yaml.read_text() + entry)

    def until(self, last: str) -> Iterator[subprocess.CompletedProcess[str] | None]:
        """Runs the page's steps up to and including the first command
        containing `last`, yielding each command's result."""
        while self.done < len(STEPS):
            step = STEPS[self.done]
            self.done += 1
            if isinstance(step, str):
                self.append_to_catalogue(step)
                yield None
                continue
            yield self.run(step)
            if last in step.code:
                return
        raise AssertionError(f"docs/external.md has no command with {last!r} left")


def one_line_engine(state: Path) -> dict[str, str]:
    """The engine in the environment through the line the build script
    prints last (README, Tests): its PATH, PULUMI_HOME and download switch,
    taken from a shell that evaluated it."""
    printed = subprocess.run(
        ["bash", BUILD_SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    shown = subprocess.run(
        [
            "bash",
            "-c",
            f'{printed}\nprintf "%s\\0" "$PATH" "$PULUMI_HOME" '
            '"$PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"',
        ],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    environment = engine_environment(state)
    expected = [environment["PATH"].split(os.pathsep)[0], environment["PULUMI_HOME"], "true"]
    assert [shown[0].split(os.pathsep)[0], shown[1], shown[2]] == expected, printed
    return environment


@pytest.fixture(scope="module")
def reader(pg_factories: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    require_engine()
    server: PgServer = pg_factories("16").start()  # type: ignore[operator]
    scratch = tmp_path_factory.mktemp("walkthrough")
    environment = one_line_engine(scratch / "state")
    environment.update(
        PULUMI_SKIP_CONFIRMATIONS="true",
        DB_HOST=server.host,
        DB_PORT=str(server.port),
        DB_ADMIN="postgres",
        DB_MAX_CONNECTIONS="200",  # tests/pgserver.py's servers
    )
    path = copy_project(scratch / "naap-db")
    yield Reader(path, environment, server.password)
    server.stop()


def test_the_page_has_the_whole_path() -> None:
    codes = [step.code for step in STEPS if isinstance(step, Command)]
    for needed in (
        "pulumi stack init mine",
        "naap-db:server.sslmode",
        "pulumi up --stack mine",
        "bin/naapdb verify --stack mine",
        "pulumi destroy --stack mine",
    ):
        assert any(needed in code for code in codes), needed
    assert any(isinstance(step, str) for step in STEPS)


def test_first_run_creates_the_venv_and_deploys(reader: Reader) -> None:
    """No venv: the first `pulumi up` creates it from requirements.txt; then
    `preview --expect-no-changes` and `verify` pass, as the page says."""
    assert not (reader.path / "venv").exists()
    results = list(reader.until("pulumi up --stack mine"))
    venv = reader.path / "venv"
    assert (venv / "pyvenv.cfg").is_file() and not venv.is_symlink()
    created = results[-1]
    assert created is not None and "Creating virtual environment" in created.stdout
    assert "Installing dependencies" in created.stdout
    list(reader.until("--expect-no-changes"))
    list(reader.until("bin/naapdb verify --stack mine"))
    assert (reader.path / ".env.verify").stat().st_mode & 0o077 == 0


def test_the_plugins_the_host_reports_are_the_sdks(reader: Reader) -> None:
    """The plugin set `pulumi about` gets from the language host equals the
    pulumi-plugin.json files of the SDKs the host installed."""
    about = reader.run(Command(f"pulumi about --json --stack {STACK}", "", 0))
    reported = {
        (plugin["name"], plugin["version"])
        for plugin in json.loads(about.stdout)["plugins"]
        if plugin["kind"] == "resource"
    }
    manifests = (reader.path / "venv").glob("lib/python*/site-packages/pulumi*/pulumi-plugin.json")
    declared = {
        (data["name"], data["version"])
        for data in (json.loads(path.read_text()) for path in manifests)
        if data.get("resource")
    }
    assert reported == declared and len(declared) == 5


def test_a_plugin_added_by_the_page_is_deployed(reader: Reader) -> None:
    results = list(reader.until("pulumi up --stack mine"))
    matrix = next(r for r in results if r is not None and "naap_invoices" in r.stdout)
    assert "naap_invoices" in matrix.stdout
    list(reader.until("bin/naapdb verify --stack mine"))


def test_destroy_keeps_the_schemas_and_their_rows(reader: Reader) -> None:
    database = reader.environment
    url = (
        f"postgresql://{database['DB_ADMIN']}:{reader.password}@{database['DB_HOST']}:"
        f"{database['DB_PORT']}/{names.DATABASE}?sslmode=disable"
    )
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute('INSERT INTO plugin_invoices."Invoice" DEFAULT VALUES')
    list(reader.until("pulumi destroy --stack mine"))
    with psycopg.connect(url, autocommit=True) as admin:
        kept = admin.execute('SELECT count(*) FROM plugin_invoices."Invoice"').fetchone()
        roles = admin.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'naap_invoices'"
        ).fetchone()
    assert kept == (1,) and roles == (0,)


def test_up_again_after_destroy_takes_the_schemas_back(reader: Reader) -> None:
    """`pulumi up` alone: its adoption step hands what destroy kept back to
    each schema's owner, and verify passes."""
    list(reader.until("pulumi up --stack mine"))
    list(reader.until("bin/naapdb verify --stack mine"))
    assert reader.done == len(STEPS)

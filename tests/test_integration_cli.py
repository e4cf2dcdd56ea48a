"""The real Pulumi engine, end to end (`cli` marker), through the Automation API.

A copy of the project, a local file backend in a temporary directory, the
passphrase secrets provider, and a stack whose server is `external`: a real
PostgreSQL the test starts (`fresh_pg`). Then: `up` -> `verify` exits 0 ->
isolation probes hold -> the push ran -> a preview and a second `up` change
nothing -> bumping one role's epoch changes only that role -> `destroy`
keeps the schemas and their data.

It needs the `pulumi` CLI on PATH and downloads the provider plugins on the
first run (into ~/.pulumi/plugins), so it skips, saying why, where the CLI is
absent. Run it with `python -m pytest -m cli -rs tests/test_integration_cli.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml

from naapdb import names
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.pgserver import PgServer

pytestmark = pytest.mark.cli

ROOT = find_project_root()
STACK = "integration"
PASSPHRASE = "naap-db integration test passphrase"
# What `pulumi up` needs of the checkout: the project, the program and what it reads.
PROJECT_ENTRIES = ("Pulumi.yaml", "__main__.py", "components", "naapdb", "migrations")
# Providers whose resources an external-server stack registers. The Python
# language host also reports every other pulumi_* package of the virtualenv
# (docker, aws) as required, so the CLI may download those too on a first run.
PLUGINS = ("postgresql", "random", "command")
BUMPED_ROLE = "naap_wallet"
NOT_CHANGED = frozenset({"same", "read"})


@pytest.fixture
def pulumi_cli() -> str:
    """The CLI's path, or skip with the reason (shown by `pytest -rs`),
    before any server is started."""
    path = shutil.which("pulumi")
    if path is None:
        pytest.skip(
            "the Pulumi CLI is not installed (no `pulumi` on PATH): install it "
            "(https://www.pulumi.com/docs/install/) to run the real-engine integration test"
        )
    return path


def plugin_version(package: str) -> str:
    """The provider version the installed SDK package was generated for."""
    manifest = resources.files(f"pulumi_{package}").joinpath("pulumi-plugin.json")
    return str(json.loads(manifest.read_text())["version"])


@dataclass
class Engine:
    """A stack of the copied project and what its operations printed."""

    stack: Any
    work_dir: Path
    server: PgServer
    output: list[str] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def up(self) -> Any:
        self.events.clear()
        result = self.stack.up(
            on_output=self.output.append, on_event=self.events.append, color="never"
        )
        assert result.summary.result == "succeeded", self.tail()
        return result

    def changed_urns(self) -> set[str]:
        """URNs of every resource the last operation did something to."""
        changed = set()
        for event in self.events:
            pre = getattr(event, "resource_pre_event", None)
            if pre is not None and _op(pre.metadata.op) not in NOT_CHANGED:
                changed.add(pre.metadata.urn)
        return changed

    def tail(self) -> str:
        return "".join(self.output)[-4000:]

    def outputs(self) -> dict[str, Any]:
        return dict(self.stack.outputs())

    def connection_urls(self) -> dict[str, str]:
        """Login role -> URL, from the stack's secret output."""
        urls = self.outputs()["connection_urls"]
        assert urls.secret, "connection_urls must be a secret output"
        return {str(role): str(url) for role, url in urls.value.items()}

    def naapdb(self, *arguments: str, url: str) -> subprocess.CompletedProcess[str]:
        """`python -m naapdb ...` against the copied project, URL in the environment."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        environment["DATABASE_URL"] = url
        return subprocess.run(
            [sys.executable, "-m", "naapdb", *arguments],
            cwd=self.work_dir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _op(op: Any) -> str:
    """An operation as its plain name: OpType is a str Enum whose hash is not
    the hash of its value, so it must be unwrapped before a set lookup."""
    return str(getattr(op, "value", op))


def _ops(summary: Any) -> set[str]:
    """The operations an update/preview summary counts at least once."""
    return {_op(op) for op, count in (summary or {}).items() if count}


def copy_project(destination: Path, state_url: str) -> None:
    """The project as a user has it, with state in `state_url` and the
    program run by this interpreter's environment."""
    destination.mkdir()
    for entry in PROJECT_ENTRIES:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(
                source, destination / entry, ignore=shutil.ignore_patterns("__pycache__")
            )
        elif source.is_file():
            shutil.copy2(source, destination / entry)
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["backend"] = {"url": state_url}
    options: dict[str, str] = {"toolchain": "pip"}
    if sys.prefix != sys.base_prefix:  # running inside a virtualenv: the program uses it
        options["virtualenv"] = sys.prefix
    project["runtime"] = {"name": "python", "options": options}
    (destination / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))


@pytest.fixture
def engine(pulumi_cli: str, fresh_pg: PgServer, tmp_path: Path) -> Iterator[Engine]:
    from pulumi import automation as auto

    state_url = (tmp_path / "state").as_uri()
    (tmp_path / "state").mkdir()
    work_dir = tmp_path / "project"
    copy_project(work_dir, state_url)
    options = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir),
        secrets_provider="passphrase",
        env_vars={
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_BACKEND_URL": state_url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        },
    )
    stack = auto.create_or_select_stack(STACK, work_dir=str(work_dir), opts=options)
    for plugin in PLUGINS:
        stack.workspace.install_plugin(plugin, f"v{plugin_version(plugin)}")
    stack.set_all_config(
        {
            "naap-db:server.kind": auto.ConfigValue("external"),
            "naap-db:server.host": auto.ConfigValue(fresh_pg.host),
            "naap-db:server.port": auto.ConfigValue(str(fresh_pg.port)),
            "naap-db:server.database": auto.ConfigValue(names.DATABASE),
            "naap-db:server.adminUser": auto.ConfigValue("postgres"),
            "naap-db:server.sslmode": auto.ConfigValue("disable"),
            "naap-db:adminPassword": auto.ConfigValue(fresh_pg.password, secret=True),
            "naap-db:credentials.rotation": auto.ConfigValue("single"),
            "naap-db:push.mode": auto.ConfigValue("sql"),
            "naap-db:push.source": auto.ConfigValue("migrations"),
        },
        path=True,
    )
    # Every statement the provider sends is logged: no password may be in one.
    for statement in ("ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()"):
        fresh_pg.execute(statement, dbname="postgres")
    yield Engine(stack, work_dir, fresh_pg)
    # The state lives in tmp_path; forgetting the stack also drops its
    # resources from it if a step failed before `destroy`.
    stack.workspace.remove_stack(STACK, force=True)


def _denied(url: str, statement: str) -> bool:
    """True when PostgreSQL refuses `statement` for lack of privilege."""
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement)  # type: ignore[arg-type]
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def test_up_verify_probe_push_idempotence_rotation_destroy(engine: Engine) -> None:
    server = engine.server
    settings = load_stack_settings(STACK, engine.work_dir)
    catalog_schemas = {schema.name for schema in settings.plan.schemas}

    # 1. up
    engine.up()
    urls = engine.connection_urls()
    assert set(urls) == {role.name for role in settings.plan.first_logins}

    # 2. verify: no drift, as the admin and with naap_readonly's rights alone
    for url in (server.url(), urls[names.READONLY]):
        result = engine.naapdb("verify", "--stack", STACK, url=url)
        assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr

    # 3. the push ran: the ledger lists every migration file, sample tables exist
    migrations = sorted((engine.work_dir / "migrations").glob("*/*.sql"))
    with server.connect() as admin:
        ledger = admin.execute("SELECT count(*) FROM naap_meta.schema_migrations").fetchone()
        assert ledger is not None and ledger[0] == len(migrations)
        tables = dict(
            admin.execute(
                "SELECT DISTINCT ON (schemaname) schemaname, quote_ident(schemaname) || '.' || "
                "quote_ident(tablename) FROM pg_tables WHERE tablename <> 'schema_migrations' "
                "ORDER BY schemaname, tablename"
            ).fetchall()
        )
        sample = admin.execute("""SELECT to_regclass('public."User"')""").fetchone()
    assert sample is not None and sample[0] is not None
    assert {"public", "plugin_wallet", "plugin_community"} <= set(tables)

    # 4. isolation probes with the generated logins
    community, wallet = urls["naap_community"], urls["naap_wallet"]
    assert _denied(community, f"SELECT * FROM {tables['plugin_wallet']}")
    assert _denied(wallet, f"SELECT * FROM {tables['plugin_community']}")
    assert _denied(community, "CREATE TABLE public.intruder (id int)")
    assert _denied(urls[names.READONLY], f"DELETE FROM {tables['plugin_wallet']}")
    assert not _denied(community, f"SELECT * FROM {tables['public']}")  # reads: [public]
    # every generated login connects as a member of naap_connect, which holds
    # the database's one grant besides its owner's
    for url in urls.values():
        psycopg.connect(url).close()
    with server.connect() as admin:
        database_acl = admin.execute(
            "SELECT a.grantee::regrole::text, a.privilege_type FROM pg_database d,"
            " aclexplode(d.datacl) a WHERE d.datname = current_database()"
            " AND a.grantee <> d.datdba"
        ).fetchall()
    assert database_acl == [(names.CONNECT_GROUP, "CONNECT")]

    # 5. nothing changes: a preview expecting none, then a second up
    preview = engine.stack.preview(expect_no_changes=True, color="never")
    assert _ops(preview.change_summary) <= NOT_CHANGED
    second = engine.up()
    assert _ops(second.summary.resource_changes) <= NOT_CHANGED, engine.tail()

    # 6. bump one role's epoch: only that role's password and role change
    from pulumi import automation as auto

    engine.stack.set_config(
        f"naap-db:credentials.epochs.{BUMPED_ROLE}", auto.ConfigValue("1"), path=True
    )
    engine.up()
    changed = engine.changed_urns()
    assert changed, engine.tail()
    assert all(BUMPED_ROLE in urn for urn in changed), sorted(changed)
    assert any("random:index/randomPassword:RandomPassword" in urn for urn in changed)
    assert any("postgresql:index/role:Role" in urn for urn in changed)
    rotated = engine.connection_urls()
    assert {role for role in urls if rotated[role] != urls[role]} == {BUMPED_ROLE}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(wallet).close()
    psycopg.connect(rotated[BUMPED_ROLE]).close()

    # no password ever reached the engine's output
    printed = "".join(engine.output)
    passwords = [urlsplit(url).password for url in [*urls.values(), *rotated.values()]]
    for password in [server.password, *passwords]:
        assert password and password not in printed
    # ... nor the server's log, which holds every statement the provider sent:
    # roles get SCRAM verifiers (naapdb/scram.py), never passwords
    server_log = (server.data_dir / "server.log").read_text(errors="replace")
    assert "SCRAM-SHA-256$" in server_log
    assert [p for p in passwords if p and p in server_log] == []

    # 7. destroy keeps the schemas and their data
    with psycopg.connect(urls["naap_base"], autocommit=True) as base:
        base.execute("""INSERT INTO public."User" ("email") VALUES ('kept@example.org')""")
    result = engine.stack.destroy(on_output=engine.output.append, color="never")
    assert result.summary.result == "succeeded", engine.tail()
    with server.connect() as admin:
        present = {row[0] for row in admin.execute("SELECT nspname FROM pg_namespace").fetchall()}
        assert catalog_schemas <= present
        kept = admin.execute("""SELECT count(*) FROM public."User" """).fetchone()
        assert kept is not None and kept[0] == 1

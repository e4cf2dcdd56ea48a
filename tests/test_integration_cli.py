"""The real Pulumi engine, end to end (`cli` marker): the CLI, language host
and plugins that scripts/build-engine.sh builds, driving a copy of the
project whose `integration` stack runs on a PostgreSQL the suite started
(server kind `external`, a file backend, passphrase secrets).

The tests share one deployment and run in file order, each starting from
what the previous one left: a TLS mismatch refused, up from empty (the
language host creating the venv), drift repaired, a plugin in and out, a
manual push, an epoch bump, a failing migration, the policy pack, destroy.
Where the engine is not built (no Go), every test skips saying how to build
it. tests/test_external_walkthrough.py runs docs/external.md the same way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from naapdb import names
from naapdb.pooler import pools
from naapdb.stackfiles import load_stack_settings
from tests.conftest import _OUR_PORTS
from tests.engine import (
    ROOT,
    STACK,
    Project,
    copy_project,
    make_project,
    missing_engine_reason,
    require_engine,
)
from tests.pgbouncer import REQUIRE_VARIABLE as REQUIRE_PGBOUNCER
from tests.pgbouncer import missing_reason, running_pgbouncer
from tests.pgserver import ClusterFactory, PgServer

pytestmark = pytest.mark.cli

NEW_PLUGIN = {"plugin": "invoices", "schema": "plugin_invoices", "reads": ["public"]}
BUMPED_ROLE = "naap_wallet"
UNCHANGED = frozenset({"same", "read"})
ENGINE_POSTGRES = "16"


@pytest.fixture(scope="module")
def project(
    pg_factories: Callable[[str], ClusterFactory], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """On PostgreSQL 16, the version the product runs, whatever
    NAAPDB_TEST_POSTGRES picks for the other db tests."""
    require_engine()
    server = pg_factories(ENGINE_POSTGRES).start()
    # Every statement the provider sends is logged: no password may be in one.
    for statement in ("ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()"):
        server.execute(statement, dbname="postgres")
    yield make_project(tmp_path_factory.mktemp("engine"), server)
    pg_factories(ENGINE_POSTGRES).discard(server)


@pytest.fixture(scope="module")
def deployed(project: Project) -> Project:
    """The stack after its first `pulumi up`."""
    project.up()
    return project


def _changed(changes: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in changes.items() if n and op not in UNCHANGED}


def _denied(url: str, statement: str) -> bool:
    """True when PostgreSQL refuses `statement` for lack of privilege."""
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(statement)  # type: ignore[arg-type]
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


def _ledger(server: PgServer) -> set[tuple[str, int]]:
    with server.connect() as admin:
        rows = admin.execute("SELECT schema, version FROM naap_meta.schema_migrations").fetchall()
    return {(str(schema), int(version)) for schema, version in rows}


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    """Trap: a one-line error used to be followed by ~110 lines of gRPC
    traceback (the engine's SIGINT landing in the SDK's last RPC)."""
    printed = result.stdout + result.stderr
    for noise in ("Traceback", "KeyboardInterrupt", "_InactiveRpcError"):
        assert noise not in printed, printed[-4000:]


def test_a_first_preview_creates_the_venv_from_requirements(project: Project) -> None:
    """No venv in the copy: the language host creates it on the first
    `pulumi preview`, as `pulumi up` and `pulumi install` do."""
    assert not (project.path / "venv").exists()
    result = project.preview()
    assert "Creating virtual environment" in result.stdout
    venv = project.path / "venv"
    assert not venv.is_symlink() and (venv / "pyvenv.cfg").is_file()


def test_a_tls_mismatch_stops_up_in_one_line_before_anything_is_created(project: Project) -> None:
    """Trap: the default `sslmode: require` against a server without TLS used
    to fail part-way ("15 created, 3 errored", the provider's raw "pq: SSL is
    not enabled on the server")."""
    project.pulumi("config", "set", "--path", "naap-db:server.sslmode", "require")
    try:
        result = project.pulumi("up", "--yes", "--skip-preview", check=False)
    finally:
        project.pulumi("config", "set", "--path", "naap-db:server.sslmode", "disable")
    assert result.returncode != 0
    printed = result.stdout + result.stderr
    assert "error: naap-db:server.sslmode: 'require' needs TLS, but the server at " in printed
    assert "SSL is not enabled" not in printed
    assert_no_traceback(result)
    assert [urn for urn in project.resource_urns() if "postgresql" in urn] == []


def test_up_from_empty_verifies_pushes_isolates_and_is_idempotent(deployed: Project) -> None:
    server = deployed.server
    # The language host made the venv from requirements.txt (no link, no copy).
    venv = deployed.path / "venv"
    assert not venv.is_symlink() and (venv / "bin" / "python").is_file()
    assert (venv / "pyvenv.cfg").is_file()
    settings = load_stack_settings(STACK, deployed.path)
    urls = deployed.connection_urls()
    assert set(urls) == {role.name for role in settings.plan.first_logins}

    # verify: no drift, as the admin and with naap_readonly's rights alone
    for url in (server.url(), urls[names.READONLY]):
        result = deployed.naapdb("verify", "--stack", STACK, url=url)
        assert result.returncode == 0, result.stdout + result.stderr

    # the push ran inside `up`: one ledger row per migration file
    files = sorted((deployed.path / "migrations").glob("*/*.sql"))
    assert len(_ledger(server)) == len(files)

    # isolation probes with the generated logins
    community, wallet = urls["naap_community"], urls["naap_wallet"]
    assert _denied(community, 'SELECT * FROM plugin_wallet."WalletConnection"')
    assert _denied(wallet, 'SELECT * FROM plugin_community."CommunityPost"')
    assert _denied(community, "CREATE TABLE public.intruder (id int)")
    assert _denied(urls[names.READONLY], 'DELETE FROM plugin_wallet."WalletConnection"')
    assert not _denied(community, 'SELECT * FROM public."User"')  # reads: [public]

    # nothing changes: a preview that expects none, then a second up
    deployed.preview("--expect-no-changes")
    deployed.up()
    assert _changed(deployed.last_update_changes()) == {}


def venv_plugins(venv: Path) -> set[tuple[str, str]]:
    """(name, version) of every resource plugin a Pulumi SDK installed in
    `venv` names in its pulumi-plugin.json."""
    found = set()
    for manifest in venv.glob("lib/python*/site-packages/pulumi*/pulumi-plugin.json"):
        data = json.loads(manifest.read_text())
        if data.get("resource"):
            found.add((data["name"], data["version"]))
    return found


def test_about_names_python_and_the_plugins_the_sdks_name(deployed: Project) -> None:
    """`pulumi about` through the built engine: the language host's About
    (runtime), GetProgramDependencies (dependencies) and GetRequiredPackages
    (plugins), which must be exactly the SDKs' pulumi-plugin.json files."""
    about = json.loads(deployed.pulumi("about", "--json").stdout)
    venv = deployed.path / "venv"
    assert about["runtime"]["language"] == "python"
    assert about["runtime"]["executable"] == str(venv / "bin" / "python")
    assert about["runtime"]["version"].startswith("3.11.")
    assert about["runtime"]["toolchain"] == "Pip"
    dependencies = {d["name"]: d["version"] for d in about["dependencies"]}
    assert {"pulumi-postgresql", "pulumi-random", "pulumi-command"} <= set(dependencies)
    reported = {(p["name"], p["version"]) for p in about["plugins"] if p["kind"] == "resource"}
    assert reported == venv_plugins(venv)
    assert {name for name, _ in reported} == {"aws", "command", "docker", "postgresql", "random"}


def test_drift_shows_in_a_refreshing_preview_and_up_repairs_it(deployed: Project) -> None:
    server = deployed.server
    server.execute(
        "GRANT CREATE ON SCHEMA plugin_wallet TO plugin_wallet_rw;"
        " REVOKE plugin_community_rw FROM naap_community;"
    )
    drifted = {
        step["urn"].rsplit("::", 1)[-1]
        for step in deployed.preview_steps("--refresh")
        if step["op"] not in UNCHANGED
    }
    assert any("naap_community" in name for name in drifted), drifted
    assert any("plugin_wallet_rw" in name for name in drifted), drifted

    deployed.up("--refresh")
    urls = deployed.connection_urls()
    result = deployed.naapdb("verify", "--stack", STACK, url=server.url())
    assert result.returncode == 0, result.stdout
    assert not _denied(urls["naap_community"], 'SELECT * FROM plugin_community."CommunityPost"')
    with server.connect() as admin:
        row = admin.execute(
            "SELECT has_schema_privilege('plugin_wallet_rw', 'plugin_wallet', 'CREATE')"
        ).fetchone()
    assert row == (False,)


def test_a_plugin_joins_then_leaves_the_catalogue(deployed: Project) -> None:
    server = deployed.server
    migration = deployed.path / "migrations" / "plugin_invoices" / "0001_init.sql"
    migration.parent.mkdir()
    migration.write_text('CREATE TABLE plugin_invoices."Invoice" (id serial PRIMARY KEY);\n')
    deployed.edit_catalog(lambda entries: entries.append(dict(NEW_PLUGIN)))
    before = set(deployed.resource_urns())

    deployed.up()
    created = set(deployed.resource_urns()) - before
    assert created and all("plugin_invoices" in urn or "naap_invoices" in urn for urn in created), (
        sorted(created)
    )
    assert deployed.last_update_changes().get("delete", 0) == 0

    url = deployed.connection_urls()["naap_invoices"]
    with psycopg.connect(url, autocommit=True) as invoices:
        invoices.execute('INSERT INTO plugin_invoices."Invoice" DEFAULT VALUES')
    assert ("plugin_invoices", 1) in _ledger(server)

    # Leaving: the entry goes, and its migrations with it (the push refuses
    # files of a schema that is not in the catalogue).
    deployed.edit_catalog(
        lambda entries: entries.remove(next(e for e in entries if e["plugin"] == "invoices"))
    )
    shutil.rmtree(migration.parent)
    deployed.up()
    assert not any("plugin_invoices" in urn for urn in deployed.resource_urns())
    with server.connect() as admin:
        kept = admin.execute('SELECT count(*) FROM plugin_invoices."Invoice"').fetchone()
    assert kept == (1,)


def test_after_a_manual_push_the_hook_runs_once_more_and_changes_nothing(
    deployed: Project,
) -> None:
    """docs/push.md: a push run by hand applies a new file; `pulumi preview
    --expect-no-changes` then still fails, because the hook's trigger (the
    files' hash) changed. The next `pulumi up` replaces the hook, whose push
    finds nothing to apply, and then the stack is quiet."""
    server = deployed.server
    migration = deployed.path / "migrations" / "plugin_community" / "0003_by_hand.sql"
    migration.write_text('CREATE TABLE plugin_community."ByHand" (id int);\n')
    url = deployed.connection_urls()[names.MIGRATOR]
    # As docs/push.md says: the migrator's URL and the stack's push key.
    key = str(deployed.outputs()["push_key"])
    pushed = deployed.naapdb("push", "--stack", STACK, url=url, NAAPDB_PUSH_KEY=key)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    ledger = _ledger(server)
    assert ("plugin_community", 3) in ledger

    quiet = deployed.preview("--expect-no-changes", check=False)
    assert quiet.returncode != 0
    changed = [s for s in deployed.preview_steps() if s["op"] not in UNCHANGED]
    assert changed and all(s["urn"].endswith("::naap-push-command") for s in changed), changed

    deployed.up()
    assert _changed(deployed.last_update_changes()) == {"replace": 1}
    assert _ledger(server) == ledger
    deployed.preview("--expect-no-changes")


def test_what_pulumi_drops_from_the_stack_file_stops_preview_in_one_line(
    deployed: Project,
) -> None:
    """Traps: a top-level `confg:` made the CLI drop the whole stack config
    (and fall back to `kind: container`), `naapdb:limits:` left every limit
    at its default."""
    stack_file = deployed.path / f"Pulumi.{STACK}.yaml"
    original = stack_file.read_text()
    for typo, key in (
        (original.replace("\nconfig:\n", "\nconfg:\n"), "confg"),
        (original + "  naapdb:limits:\n    plugins: {connections: 6}\n", "naapdb:limits"),
    ):
        stack_file.write_text(typo)
        try:
            result = deployed.preview(check=False)
        finally:
            stack_file.write_text(original)
        assert result.returncode != 0
        assert f"error: {stack_file}: {key}: " in result.stdout, result.stdout[-3000:]
        assert_no_traceback(result)


def test_an_epoch_bump_changes_exactly_one_password(deployed: Project) -> None:
    before = deployed.connection_urls()
    deployed.pulumi("config", "set", "--path", f"naap-db:credentials.epochs.{BUMPED_ROLE}", "1")
    steps = [s for s in deployed.preview_steps() if s["op"] not in UNCHANGED]
    assert steps and all(BUMPED_ROLE in s["urn"] for s in steps), [s["urn"] for s in steps]

    deployed.up()
    after = deployed.connection_urls()
    assert {role for role in before if after[role] != before[role]} == {BUMPED_ROLE}
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(before[BUMPED_ROLE]).close()
    psycopg.connect(after[BUMPED_ROLE]).close()

    # The server's log holds every statement the provider sent: roles got
    # SCRAM verifiers (naapdb/scram.py), never a password.
    server_log = (deployed.server.data_dir / "server.log").read_text(errors="replace")
    assert "SCRAM-SHA-256$" in server_log
    passwords = {urlsplit(url).password for url in [*before.values(), *after.values()]}
    assert [p for p in passwords if p and p in server_log] == []


def test_a_failing_migration_fails_up_naming_the_file_and_applies_nothing(
    deployed: Project,
) -> None:
    server = deployed.server
    bad = deployed.path / "migrations" / "plugin_wallet" / "0002_broken.sql"
    bad.write_text('CREATE TABLE plugin_wallet."Half" (id int);\nSELECT * FROM no_such_table;\n')
    result = deployed.pulumi("up", "--yes", check=False)
    assert result.returncode != 0
    assert "0002_broken.sql" in result.stdout + result.stderr, result.stdout[-4000:]
    assert_no_traceback(result)
    with server.connect() as admin:
        half = admin.execute("""SELECT to_regclass('plugin_wallet."Half"')""").fetchone()
    assert half == (None,)
    assert ("plugin_wallet", 2) not in _ledger(server)

    bad.write_text('CREATE TABLE plugin_wallet."Half" (id int);\n')
    deployed.up()
    assert ("plugin_wallet", 2) in _ledger(server)


def test_a_hostile_file_fails_up_naming_it_and_reaches_nothing(deployed: Project) -> None:
    """A file in gateway's folder that hands gateway's table to wallet's
    login: an owner may, a file may not (naapdb.push.confine). `up` fails
    naming it; nothing of it stays, wallet's login still reads nothing of
    gateway's; the stack deploys again once it is gone."""
    server = deployed.server
    hostile = deployed.path / "migrations" / "plugin_gateway" / "0002_share.sql"
    hostile.write_text(
        "CREATE TABLE plugin_gateway.shared (x int);\n"
        "GRANT SELECT ON plugin_gateway.shared TO naap_wallet;\n"
    )
    result = deployed.pulumi("up", "--yes", "--skip-preview", check=False)
    printed = result.stdout + result.stderr
    assert result.returncode != 0
    assert "0002_share.sql" in printed and "SELECT to naap_wallet" in printed, printed[-4000:]
    with server.connect() as admin:
        shared = admin.execute("SELECT to_regclass('plugin_gateway.shared')").fetchone()
    assert shared == (None,)
    assert ("plugin_gateway", 2) not in _ledger(server)
    hostile.unlink()
    deployed.up()
    deployed.preview("--expect-no-changes")


def test_the_policy_pack_passes_the_program_and_stops_a_superuser(deployed: Project) -> None:
    # The pack's own venv, made as a user makes it (`pulumi install` in the
    # pack's directory: the language host's InstallDependencies).
    installed = subprocess.run(
        ["pulumi", "install"],
        cwd=deployed.path / "policy",
        env=deployed.environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    assert (deployed.path / "policy" / "venv" / "bin" / "python").is_file()
    deployed.preview("--policy-pack", "policy")
    main = deployed.path / "__main__.py"
    original = main.read_text()
    main.write_text(
        original
        + "\nimport pulumi_postgresql as postgresql\n"
        + "postgresql.Role('rogue', name='rogue', superuser=True, login=False)\n"
    )
    try:
        result = deployed.preview("--policy-pack", "policy", check=False)
    finally:
        main.write_text(original)
    assert result.returncode != 0
    assert re.search(r"postgresql-role-no-elevated-attributes", result.stdout + result.stderr), (
        result.stdout[-3000:]
    )


def test_an_external_pooler_address_is_handed_out_and_the_push_stays_direct(
    deployed: Project,
) -> None:
    """`naap-db:pooler` kind `external`, at the address of a PgBouncer that
    fronts the stack's server (Debian's, with the config and auth file
    naapdb/pgbouncer.py renders from the plan and the stack's passwords):
    `up` creates nothing, hands the application logins the pooler's URL and
    the migrator its direct one, and leaves the push (direct) alone."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_PGBOUNCER):
            pytest.fail(reason)
        pytest.skip(reason)
    server = deployed.server
    plan = load_stack_settings(STACK, deployed.path).plan
    direct = deployed.connection_urls()
    passwords = {login: urlsplit(url).password or "" for login, url in direct.items()}
    with running_pgbouncer(server, pools(plan), passwords, on_port=_OUR_PORTS.add) as bouncer:
        deployed.pulumi(
            "config",
            "set-all",
            "--path",
            "--plaintext",
            "naap-db:pooler.kind=external",
            "--plaintext",
            f"naap-db:pooler.host={bouncer.host}",
            "--plaintext",
            f"naap-db:pooler.port={bouncer.port}",
            "--plaintext",
            "naap-db:pooler.sslmode=disable",
        )
        # An address in config: nothing but the pooler's (empty) component is
        # new; no resource changes, and the push does not run again.
        steps = [s for s in deployed.preview_steps() if s["op"] not in UNCHANGED]
        assert [(s["op"], s["urn"].split("::")[-2]) for s in steps] == [
            ("create", "naap:database:NaapDatabase$naap:database:ConnectionPooler")
        ]
        deployed.up()
        outputs = deployed.outputs()
        urls = outputs["connection_urls"]
        assert outputs["direct_urls"] == direct
        assert outputs["pooler"]["kind"] == "external"
        assert outputs["pooler"]["port"] == bouncer.port
        for login, url in urls.items():
            port = urlsplit(url).port
            assert port == (server.port if login == names.MIGRATOR else bouncer.port), login
        with psycopg.connect(urls[names.APP]) as app:
            row = app.execute("SELECT current_user::text, inet_server_port()").fetchone()
        assert row == (names.APP, server.port)
        # verify through the pooler (naap_readonly's pooled URL) reads the
        # server behind it; only plugin_invoices, kept when it left, differs.
        result = deployed.naapdb(
            "verify", "--stack", STACK, "--format", "json", url=urls[names.READONLY]
        )
        report = json.loads(result.stdout)
        assert [d["kind"] for d in report["differences"]] == ["extra-schema"], result.stdout
        assert report["server"]["port"] == server.port
        assert report["server"]["via"] == f"{bouncer.host}:{bouncer.port}"
        assert f"read the primary {server.host}:{server.port}" in result.stderr
        assert f"; through {bouncer.host}:{bouncer.port})" in result.stderr
        deployed.pulumi("config", "rm", "--path", "naap-db:pooler")
        deployed.up()
    assert deployed.connection_urls() == direct
    assert "pooler" not in deployed.outputs()


def test_destroy_keeps_the_schemas_and_their_data(deployed: Project) -> None:
    server = deployed.server
    urls = deployed.connection_urls()
    with psycopg.connect(urls["naap_base"], autocommit=True) as base:
        base.execute("""INSERT INTO public."User" ("email") VALUES ('kept@example.org')""")
    settings = load_stack_settings(STACK, deployed.path)
    output = deployed.pulumi("destroy", "--yes", "--skip-preview")
    with server.connect() as admin:
        present = {row[0] for row in admin.execute("SELECT nspname FROM pg_namespace").fetchall()}
        kept = admin.execute("""SELECT count(*) FROM public."User" """).fetchone()
    assert {schema.name for schema in settings.plan.schemas} <= present
    assert kept == (1,)
    printed = output.stdout + output.stderr
    for url in urls.values():
        password = urlsplit(url).password
        assert password and password not in printed

    # The provider's REASSIGN OWNED BY each schema's owner handed what destroy
    # kept to the admin, and DROP OWNED BY took the groups' rights on the
    # tables. verify lists each object with the statement that mends it; the
    # next `pulumi up` alone needs none of them: its adoption (naapdb.adopt,
    # as the admin) hands every object back to its schema's owner with its
    # rights before the push reads the ledger.
    result = deployed.naapdb("verify", "--stack", STACK, "--format", "json", url=server.url())
    assert result.returncode == 1, result.stdout + result.stderr
    differences = json.loads(result.stdout)["differences"]
    owners = [d for d in differences if d["kind"] == "object-owner"]
    assert any(d["message"].startswith("table public.User ") for d in owners), owners
    again = deployed.up()
    assert "adopted: " in again.stdout, again.stdout[-3000:]
    with server.connect() as admin:
        assert admin.execute("""SELECT count(*) FROM public."User" """).fetchone() == (1,)
    deployed.preview("--expect-no-changes")
    # plugin_invoices stays, with its rows, since that plugin left: verify
    # offers its DROP SCHEMA (RESTRICT) as a person's decision, nothing else.
    result = deployed.naapdb("verify", "--stack", STACK, "--format", "json", url=server.url())
    left = [d["kind"] for d in json.loads(result.stdout)["differences"]]
    assert left == ["extra-schema"], result.stdout


# The last main before each schema had an owner of its own.
LEGACY_COMMIT = "503bdc4834bdbdbc1ef44929118601c90f0ed4f6"


def test_a_deployment_of_the_shared_owner_model_moves_over_with_pulumi_up_alone(
    pg_factories: Callable[[str], ClusterFactory], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A stack deployed by main at LEGACY_COMMIT (naap_owner owns every schema
    and object; its push ran every file as naap_owner) with rows in it, then
    this checkout's code over the same project and stack, and `pulumi up`:
    no table recreated (the same oids), no row lost, every object its
    schema's owner's with the plan's rights, verify exits 0, a second
    preview changes nothing (tests/naapdb/test_upgrade.py holds the same on
    PostgreSQL 16 and 18 without the engine)."""
    if missing_engine_reason() is not None:
        pytest.fail(str(missing_engine_reason()))
    workdir = tmp_path_factory.mktemp("upgrade")
    legacy = workdir / "legacy"
    legacy.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", LEGACY_COMMIT],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, (
        f"the checkout lacks {LEGACY_COMMIT} (a shallow clone?): "
        + archive.stderr.decode(errors="replace")
    )
    subprocess.run(["tar", "-x", "-C", str(legacy)], input=archive.stdout, check=True)
    server = pg_factories(ENGINE_POSTGRES).start()
    try:
        project = make_project(workdir, server, source=legacy)
        project.up()
        with server.connect() as admin:
            admin.execute(
                """INSERT INTO public."User" ("id", "email") VALUES ('u1', 'legacy@example.org');"""
                """INSERT INTO plugin_wallet."WalletConnection" """
                """("userId", "address", "chainId", "provider") VALUES ('u1', '0x1', 1, 'm')"""
            )
            owner = admin.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'WalletConnection'"
            ).fetchone()
        assert owner == (names.OWNER,)
        before = _relations_and_rows(server)

        copy_project(project.path, ROOT)
        project.up()
        assert _relations_and_rows(server) == before
        with server.connect() as admin:
            owner = admin.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'WalletConnection'"
            ).fetchone()
        assert owner == ("plugin_wallet_owner",)
        result = project.naapdb("verify", "--stack", STACK, url=server.url())
        assert result.returncode == 0, result.stdout + result.stderr
        project.preview("--expect-no-changes")
    finally:
        server.stop()


def _relations_and_rows(server: PgServer) -> dict[str, object]:
    with server.connect() as admin:
        relations = admin.execute(
            "SELECT n.nspname, c.relname, c.oid FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%s) ORDER BY 1, 2",
            (["public", "plugin_wallet", "plugin_community", "naap_meta"],),
        ).fetchall()
        rows = {
            table: admin.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # type: ignore[arg-type]
            for table in (
                'public."User"',
                'plugin_wallet."WalletConnection"',
                "naap_meta.schema_migrations",
            )
        }
    return {"relations": relations, "rows": rows}

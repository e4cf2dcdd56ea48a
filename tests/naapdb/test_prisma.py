"""Prisma mode: the `schemas` check on real `schema.prisma` files, the command
line and environment Prisma runs with (through a stand-in `npx` that records
them), and the real `prisma db push` with the pinned Prisma CLI
(tests/prismacli.py), which skips only where npm could not install it."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from naapdb import names, prisma, verify
from naapdb.__main__ import main
from naapdb.catalog import parse_catalog
from naapdb.plan import AccessPlan, build_plan
from naapdb.prisma import PrismaSchemaError, compare, parse_schemas, read_schemas
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests import prismacli
from tests.pgserver import PgServer

ROOT = find_project_root(Path(__file__).parent)
FIXTURES = ROOT / "tests" / "fixtures" / "prisma"
CATALOG = load_stack_settings("dev", ROOT).catalog
MIGRATOR_PASSWORD = "prisma/migrator:pw@1"
PRISMA_PLAN = build_plan(load_stack_settings("dev").catalog, prisma=True)


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["prisma-check", *argv, "--project", str(ROOT)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---------------------------------------------------------------- the check


def test_the_platform_schema_matches_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "platform.prisma"
    assert read_schemas(path) == CATALOG.schemas
    code, out, _ = check(capsys, str(path))
    assert code == 0
    assert out == f"{path}: the datasource schemas match the catalogue (8 schemas)\n"


def test_a_prisma7_schema_without_url_and_a_commented_out_datasource(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = FIXTURES / "prisma7.prisma"
    assert "bogus" not in read_schemas(path)
    assert check(capsys, str(path), "--stack", "prod")[0] == 0


def test_each_missing_and_extra_schema_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "drifted.prisma"
    code, out, _ = check(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: missing plugin_developer_api: in the catalogue")
    assert lines[1].startswith(f"{path}: extra plugin_legacy: in the datasource `schemas`")


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("no_schemas.prisma", "the datasource has no `schemas` list"),
        ("unclosed.prisma", "the schemas list is never closed"),
        ("missing.prisma", "no such file; name the platform's schema.prisma"),
    ],
)
def test_unparsable_files_exit_2(
    capsys: pytest.CaptureFixture[str], fixture: str, message: str
) -> None:
    code, out, err = check(capsys, str(FIXTURES / fixture))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {FIXTURES / fixture}")
    assert message in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('generator client {\n provider = "prisma-client-js"\n}\n', "no `datasource` block"),
        (
            'datasource a {\n schemas = ["public"]\n}\ndatasource b {\n schemas = ["public"]\n}\n',
            "2 `datasource` blocks",
        ),
        ("datasource db {\n schemas = [public]\n}\n", "unexpected 'public'"),
        ('datasource db {\n schemas = "public"\n}\n', 'expected schemas = ["...", ...]'),
        ('datasource db {\n schemas = ["public"]\n', "block is never closed"),
        ('datasource db {\n schemas = ["public]\n}\n', "unterminated string"),
        ('/* datasource db {\n schemas = ["public"]\n}\n', "unterminated /* comment"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PrismaSchemaError) as caught:
        parse_schemas(text, "x.prisma")
    assert message in str(caught.value)
    assert str(caught.value).startswith("x.prisma")


def test_a_schemas_property_outside_the_datasource_is_ignored() -> None:
    text = (
        'generator client {\n  provider = "prisma-client-js"\n  schemas = ["nope"]\n}\n'
        'datasource db {\n  provider = "postgresql"\n  schemas = ["public"]\n}\n'
        'model M {\n  id String @id\n  @@schema("public")\n}\n'
    )
    assert parse_schemas(text) == ("public",)


def test_compare_keeps_each_sides_order() -> None:
    catalog = parse_catalog(
        [{"plugin": "base", "schema": "public"}, {"plugin": "a", "schema": "plugin_a"}]
    )
    diff = compare(("plugin_z", "public", "plugin_y", "plugin_z"), catalog)
    assert (diff.missing, diff.extra, diff.equal) == (
        ("plugin_a",),
        ("plugin_z", "plugin_y"),
        False,
    )
    assert compare(("plugin_a", "public"), catalog).equal


def test_a_directory_is_searched_where_prisma_looks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prisma").mkdir()
    shutil.copy(FIXTURES / "platform.prisma", tmp_path / "prisma" / "schema.prisma")
    assert check(capsys, str(tmp_path))[0] == 0
    code, _, err = check(capsys, str(tmp_path / "prisma" / "missing-dir"))
    assert code == 2 and "no such file" in err


def test_a_directory_without_a_schema_names_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """prisma-check reads no push setting: its message says what to pass it."""
    code, out, err = check(capsys, str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path}: no prisma/schema.prisma or schema.prisma; ")
    assert "schema.prisma file itself" in err and "naap-db:push" not in err
    assert err.count("\n") == 1


# ---------------------------------------------------------------- what Prisma runs with


def test_the_url_acts_as_naap_owner_with_options_url_encoded() -> None:
    password = quote("p@ss/w:rd", safe="")
    url = f"postgresql://naap_migrator:{password}@db.internal:5432/naap?sslmode=require"
    result = prisma.prisma_url(url)
    assert result.endswith("?sslmode=require&options=-c%20role%3Dnaap_owner")
    params = conninfo_to_dict(result)
    assert params["options"] == "-c role=naap_owner"
    assert params["password"] == "p@ss/w:rd"
    assert (params["host"], params["dbname"], params["sslmode"]) == (
        "db.internal",
        "naap",
        "require",
    )
    assert prisma.prisma_url(result) == result  # idempotent


def test_existing_options_are_kept_and_conninfo_becomes_a_url() -> None:
    merged = prisma.prisma_url("postgresql://u:p@h/naap?options=-c%20statement_timeout%3D0")
    assert conninfo_to_dict(merged)["options"] == "-c statement_timeout=0 -c role=naap_owner"
    converted = prisma.prisma_url("host=h port=6432 dbname=naap user=naap_migrator password='a b'")
    assert converted.startswith("postgresql://naap_migrator:a%20b@h:6432/naap?")
    assert conninfo_to_dict(converted)["options"] == "-c role=naap_owner"


def test_the_command_never_generates_and_never_downloads() -> None:
    assert prisma.push_command(6) == [
        "npx",
        "--no-install",
        "prisma",
        "db",
        "push",
        "--skip-generate",
    ]
    assert prisma.push_command(5) == [
        "npx",
        "--no-install",
        "prisma",
        "db",
        "push",
        "--skip-generate",
    ]
    # Prisma 7 never generates on push and refuses the flag.
    assert prisma.push_command(7) == ["npx", "--no-install", "prisma", "db", "push"]
    assert prisma.push_command(8) == ["npx", "--no-install", "prisma", "db", "push"]
    for version in (6, 7):
        assert "--accept-data-loss" not in prisma.push_command(version)


def test_the_environment_holds_the_owner_url_and_nothing_stale() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "DATABASE_URL": "postgresql://stale",
        "DIRECT_URL": "postgresql://stale-direct",
        "NAAPDB_DATABASE_SECRET_ID": "arn:aws:secretsmanager:...",
        "PGPASSWORD": "stale",
    }
    environment = prisma.prisma_environment(base, "postgresql://naap_migrator:pw@h:5432/naap")
    owner_url = "postgresql://naap_migrator:pw@h:5432/naap?options=-c%20role%3Dnaap_owner"
    assert environment == {
        "PATH": "/usr/bin",
        "HOME": "/home/ci",
        "DATABASE_URL": owner_url,
        "DIRECT_URL": owner_url,
    }


class _Completed:
    def __init__(self, returncode: int, stdout: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, ""


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (_Completed(0, "prisma                  : 6.19.0\n@prisma/client          : 6.19.0\n"), 6),
        (_Completed(0, "Environment variables loaded\nprisma               : 7.0.1\n"), 7),
        (_Completed(1, "prisma : 6.1.0\n"), None),
        (_Completed(0, "npm ERR! could not determine executable to run\n"), None),
        (FileNotFoundError("npx"), None),
        (subprocess.TimeoutExpired("npx", 120), None),
    ],
)
def test_the_installed_major_version_is_detected(outcome: Any, expected: int | None) -> None:
    calls: list[dict[str, Any]] = []

    def run(command: list[str], **kwargs: Any) -> Any:
        calls.append({"command": command, **kwargs})
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert prisma.prisma_major_version(Path("/srv/platform"), run) == expected
    assert calls[0]["command"] == ["npx", "--no-install", "prisma", "--version"]
    assert calls[0]["cwd"] == Path("/srv/platform")
    assert "DATABASE_URL" not in calls[0]["env"]


# ---------------------------------------------------------------- push --prisma, a stand-in npx

FAKE_NPX = """#!{python}
import json, os, sys
arguments = sys.argv[1:]
if arguments[-1:] == ["--version"]:
    print("prisma                  : " + os.environ.get("FAKE_PRISMA_VERSION", "6.7.0"))
    sys.exit(0)
with open(os.environ["FAKE_NPX_LOG"], "a") as log:
    log.write(json.dumps({{
        "argv": arguments,
        "cwd": os.getcwd(),
        "DATABASE_URL": os.environ.get("DATABASE_URL"),
        "DIRECT_URL": os.environ.get("DIRECT_URL"),
    }}) + "\\n")
# A careless tool echoing its connection: the push must redact it.
print("Datasource db: " + os.environ["DATABASE_URL"])
if os.environ.get("FAKE_PRISMA_SQL"):
    # What Prisma's own push does: DDL on the URL it was given.
    import psycopg
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        connection.execute(os.environ["FAKE_PRISMA_SQL"])
sys.exit(int(os.environ.get("FAKE_NPX_EXIT", "0")))
"""


@pytest.fixture
def fake_npx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `npx` first on PATH that records how it was called; returns its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npx"
    script.write_text(FAKE_NPX.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "npx.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_NPX_LOG", str(log))
    return log


@pytest.fixture
def platform_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "packages" / "database"
    (directory / "prisma").mkdir(parents=True)
    shutil.copy(FIXTURES / "platform.prisma", directory / "prisma" / "schema.prisma")
    return directory


def _calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _push(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["push", *argv, "--project", str(ROOT)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


PRISMA_DDL = (
    'CREATE TABLE public."PrismaUser" (id text PRIMARY KEY); '
    "CREATE TYPE plugin_community.\"PrismaMood\" AS ENUM ('up', 'down'); "
    'CREATE TABLE plugin_community."PrismaPost" (id serial PRIMARY KEY, '
    'author text REFERENCES public."PrismaUser" (id), mood plugin_community."PrismaMood")'
)


@pytest.mark.db
@pytest.mark.parametrize(("version", "skip_generate"), [("6.7.0", True), ("7.1.0", False)])
def test_push_runs_prisma_as_naap_owner_under_the_lock(
    fresh_pg: PgServer,
    fake_npx: Path,
    platform_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    version: str,
    skip_generate: bool,
) -> None:
    """Prisma creates every schema's objects as naap_owner (a member of every
    schema's owner in prisma mode); the push then hands each to its schema's
    owner with the rights its default privileges give, so the database ends
    as the SQL push leaves it: verify finds nothing."""
    url = _apply_plan(fresh_pg, PRISMA_PLAN)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("FAKE_PRISMA_VERSION", version)
    monkeypatch.setenv("FAKE_PRISMA_SQL", PRISMA_DDL)
    code, out, err = _push(capsys, "--prisma", str(platform_dir))
    assert code == 0, err
    [call] = _calls(fake_npx)
    expected = ["--no-install", "prisma", "db", "push"] + (
        ["--skip-generate"] if skip_generate else []
    )
    assert call["argv"] == expected
    assert Path(call["cwd"]).resolve() == platform_dir.resolve()
    assert call["DATABASE_URL"] == call["DIRECT_URL"] == prisma.prisma_url(url)
    assert MIGRATOR_PASSWORD not in out + err  # the tool's echo is redacted
    assert "Datasource db: postgresql://naap_migrator:***@" in out
    # two tables and a type; each table's and its serial sequence's rights for _rw and _ro
    assert out.splitlines()[-1] == "handed 3 objects to their schema's owner, restored 6 rights"
    with fresh_pg.connect() as admin:
        owners = admin.execute(
            "SELECT c.relname, c.relowner::regrole::text FROM pg_class c "
            "WHERE c.relname IN ('PrismaUser', 'PrismaPost') ORDER BY 1"
        ).fetchall()
        assert owners == [("PrismaPost", "plugin_community_owner"), ("PrismaUser", "public_owner")]
        assert not verify.verify(admin, PRISMA_PLAN).differences


@pytest.mark.db
def test_a_failing_prisma_push_exits_2(
    pg: PgServer,
    fake_npx: Path,
    platform_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", pg.url())
    monkeypatch.setenv("FAKE_NPX_EXIT", "1")
    code, out, err = _push(capsys, "--prisma", str(platform_dir))
    assert code == 2
    assert err.strip().endswith(f"failed in {platform_dir} (exit 1)")
    assert pg.password not in out + err


def test_a_drifted_schemas_list_stops_before_prisma_runs(
    fake_npx: Path, platform_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURES / "drifted.prisma", platform_dir / "prisma" / "schema.prisma")
    code, _, err = _push(capsys, "--prisma", str(platform_dir))
    assert code == 2
    assert "missing plugin_developer_api" in err and "extra plugin_legacy" in err
    assert _calls(fake_npx) == []


def test_dry_run_names_the_command_and_runs_nothing(
    fake_npx: Path, platform_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _push(capsys, "--prisma", str(platform_dir), "--dry-run")
    assert code == 0
    assert out == (
        f"would run `npx --no-install prisma db push --skip-generate` in {platform_dir} "
        "as naap_owner\n"
    )
    assert _calls(fake_npx) == []


def test_without_an_installed_prisma_the_push_says_what_to_do(
    tmp_path: Path,
    platform_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = _push(capsys, "--prisma", str(platform_dir))
    assert code == 2
    assert "`npx --no-install prisma --version` does not run there" in err


# ---------------------------------------------------------------- the URL on a real server


def _apply_plan(server: PgServer, plan: AccessPlan | None = None) -> str:
    from naapdb.sql import plan_to_sql

    server.execute(plan_to_sql(plan or load_stack_settings("dev", ROOT).plan))
    server.set_passwords({names.MIGRATOR: MIGRATOR_PASSWORD})
    return (
        f"postgresql://{names.MIGRATOR}:{quote(MIGRATOR_PASSWORD, safe='')}"
        f"@{server.host}:{server.port}/{names.DATABASE}?sslmode=disable"
    )


@pytest.mark.db
def test_the_prisma_url_makes_what_prisma_creates_owned_by_naap_owner(fresh_pg: PgServer) -> None:
    """Until the push hands it to its schema's owner (the test above)."""
    url = prisma.prisma_url(_apply_plan(fresh_pg, PRISMA_PLAN))
    with psycopg.connect(url, autocommit=True) as connection:
        assert connection.execute("SELECT session_user, current_user").fetchone() == (
            names.MIGRATOR,
            names.OWNER,
        )
        connection.execute('CREATE TABLE plugin_community."PrismaMade" (id text PRIMARY KEY)')
    owner = (
        fresh_pg.connect()
        .execute("SELECT tableowner FROM pg_tables WHERE tablename = 'PrismaMade'")
        .fetchone()
    )
    assert owner == (names.OWNER,)


# ---------------------------------------------------------------- the real Prisma


@pytest.fixture
def real_prisma_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A platform directory as the NAAP checkout's packages/database: the
    pinned Prisma CLI in its node_modules (tests/prismacli.py) and a
    prisma.config.ts that runs Prisma's WebAssembly schema engine."""
    if shutil.which("npx") is None or not prismacli.installed():
        message = f"the pinned Prisma CLI is not installed in {prismacli.root()}: {prismacli.FIX}"
        if os.environ.get(prismacli.REQUIRE_VARIABLE):
            pytest.fail(message)
        pytest.skip(message)
    directory = tmp_path / "database"
    (directory / "prisma").mkdir(parents=True)
    (directory / "node_modules").symlink_to(prismacli.node_modules())
    shutil.copyfile(prismacli.PINNED / "prisma.config.ts", directory / "prisma.config.ts")
    # The query compiler instead of the query engine library, another download;
    # no update check, no telemetry (no network but PostgreSQL's).
    monkeypatch.setenv("PRISMA_CLIENT_ENGINE_TYPE", "client")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    monkeypatch.setenv("PRISMA_HIDE_UPDATE_MESSAGE", "1")
    return directory


@pytest.mark.db
def test_real_prisma_db_push_creates_the_tables_and_hands_them_to_their_owner(
    fresh_pg: PgServer,
    real_prisma_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real `prisma db push` (Prisma's own schema engine) creates the
    table as naap_owner; the push hands it to its schema's owner, and the
    database ends as the SQL push leaves it: verify finds nothing."""
    schemas = ", ".join(f'"{schema}"' for schema in CATALOG.schemas)
    (real_prisma_dir / "prisma" / "schema.prisma").write_text(
        "datasource db {\n"
        '  provider = "postgresql"\n'
        # Prisma 6 requires a url; with an adapter it connects through the
        # adapter's DATABASE_URL and never uses this one.
        '  url      = "postgresql://unused.invalid/naap"\n'
        f"  schemas  = [{schemas}]\n"
        "}\n\n"
        "model CommunityNote {\n"
        "  id   String @id\n"
        "  body String\n"
        '  @@schema("plugin_community")\n'
        "}\n"
    )
    assert prisma.prisma_major_version(real_prisma_dir) == 6
    monkeypatch.setenv("DATABASE_URL", _apply_plan(fresh_pg, PRISMA_PLAN))
    code, out, err = _push(capsys, "--prisma", str(real_prisma_dir))
    assert code == 0, out + err
    assert "Your database is now in sync with your Prisma schema" in out
    assert MIGRATOR_PASSWORD not in out + err
    # the table, handed from naap_owner (who created it) with its _rw and _ro rights
    assert out.splitlines()[-1] == "handed 1 objects to their schema's owner, restored 2 rights"
    with fresh_pg.connect() as admin:
        owner = admin.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'plugin_community' "
            "AND tablename = 'CommunityNote'"
        ).fetchone()
        assert owner == ("plugin_community_owner",)
        assert not verify.verify(admin, PRISMA_PLAN).differences

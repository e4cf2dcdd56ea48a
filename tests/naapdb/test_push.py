"""The schema push: the file rules without a server, then on a real PostgreSQL
with the access plan applied (as `pulumi up` leaves it) and the push run as
`naap_migrator`, the way the `pulumi up` hook runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from naapdb import names, rds_ca
from naapdb.__main__ import main
from naapdb.catalog import parse_catalog
from naapdb.connection import ConnectionError_
from naapdb.push import (
    LOCK_KEY,
    SECRET_ID_VARIABLE,
    LedgerEntry,
    PushError,
    discover,
    forbidden_statement,
    pending,
    resolve_catalog,
    resolve_database_url,
    statements,
    url_from_secret,
)
from naapdb.pushkey import PUSH_KEY_VARIABLE
from naapdb.stackfiles import find_project_root, load_stack_settings
from tests.deployed import PUSH_KEY, deploy, push_passwords
from tests.pgserver import SUPERUSER, ClusterFactory, PgServer

ROOT = find_project_root(Path(__file__).parent)
MIGRATIONS = ROOT / "migrations"
SETTINGS = load_stack_settings("dev", ROOT)
CATALOG = SETTINGS.catalog
# Characters that need quoting in a URL: the push must cope, and never print them.
MIGRATOR_PASSWORD = "m1grator/pw:with@odd#chars"
LOGIN_PASSWORD = "login-password-for-tests"
CREATE_TABLE = re.compile(r'CREATE TABLE (\w+)\."(\w+)"')


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- files, no server


def test_project_catalogue_is_what_every_stack_inherits() -> None:
    assert resolve_catalog(None, ROOT) == CATALOG
    assert resolve_catalog("prod", ROOT) == load_stack_settings("prod", ROOT).catalog


def test_samples_cover_every_schema_in_push_order() -> None:
    migrations = discover(MIGRATIONS, CATALOG)
    schemas = list(dict.fromkeys(m.schema for m in migrations))
    assert schemas == list(CATALOG.push_order())
    assert schemas[0] == names.PUBLIC
    for schema in schemas:
        versions = [m.version for m in migrations if m.schema == schema]
        assert versions == sorted(versions)
    assert all(len(m.checksum) == 64 for m in migrations)


def test_a_new_catalogue_order_orders_the_push(tmp_path: Path) -> None:
    catalog = parse_catalog(
        [
            {"plugin": "zeta", "schema": "plugin_zeta"},
            {"plugin": "base", "schema": "public"},
            {"plugin": "alpha", "schema": "plugin_alpha"},
        ]
    )
    for schema in ("plugin_alpha", "plugin_zeta", "public"):
        write(tmp_path / schema / "0002_second.sql", "SELECT 2;")
        write(tmp_path / schema / "0001_first.sql", "SELECT 1;")
    order = [(m.schema, m.version) for m in discover(tmp_path, catalog)]
    assert order == [
        (schema, version)
        for schema in ("public", "plugin_zeta", "plugin_alpha")
        for version in (1, 2)
    ]


@pytest.mark.parametrize(
    ("relative", "content", "expected"),
    [
        ("plugin_unknown/0001_x.sql", "SELECT 1;", "schema plugin_unknown is not in the catalogue"),
        ("naap_meta/0001_x.sql", "SELECT 1;", "holds the push's own ledger"),
        ("public/1_users.sql", "SELECT 1;", "not a migration file name"),
        ("public/0004_Users.sql", "SELECT 1;", "not a migration file name"),
        ("public/0004-users.sql", "SELECT 1;", "not a migration file name"),
        ("public/notes.txt", "hello", "not a migration file name"),
        ("public/0001_again.sql", "SELECT 1;", "version 0001 is also 0001_again.sql"),
        ("public/0000_zero.sql", "SELECT 1;", "versions start at 0001"),
        ("0001_loose.sql", "SELECT 1;", "must live in its schema's directory"),
        ("public/0004_commit.sql", "CREATE TABLE a ();\nCOMMIT;", ":2: COMMIT is not allowed"),
        ("public/0004_role.sql", "RESET ROLE;", ":1: RESET ROLE is not allowed"),
    ],
)
def test_bad_files_are_refused_naming_the_file(
    tmp_path: Path, relative: str, content: str, expected: str
) -> None:
    source = copy_migrations(tmp_path)
    bad = write(source / relative, content)
    with pytest.raises(PushError) as caught:
        discover(source, CATALOG)
    message = str(caught.value)
    assert expected in message
    assert str(bad) in message or str(bad.parent) in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    source = copy_migrations(tmp_path)
    (source / "public" / "0004_latin1.sql").write_bytes(b"-- caf\xe9\nSELECT 1;")
    with pytest.raises(PushError, match=r"0004_latin1\.sql: is not UTF-8"):
        discover(source, CATALOG)


def test_symlinked_or_out_of_tree_migrations_are_refused_naming_the_file(tmp_path: Path) -> None:
    """Issue 21: a pull request adding `public/0004_x.sql -> ~/.aws/credentials`
    (or a schema directory linking elsewhere) must not make the push read,
    run or echo a file the diff never showed."""
    outside = write(tmp_path / "elsewhere" / "secret.sql", "SELECT 'runner secret';")
    cases = {
        "public/0004_linked.sql": outside,
        "plugin_wallet": outside.parent,
    }
    for relative, target in cases.items():
        source = copy_migrations(tmp_path / relative.replace("/", "_"))
        link = source / relative
        if link.is_dir():
            shutil.rmtree(link)
        link.symlink_to(target)
        with pytest.raises(PushError) as caught:
            discover(source, CATALOG)
        message = str(caught.value)
        assert message.startswith(f"{link}: is a symbolic link;"), message
        assert "runner secret" not in message
    # A link inside the tree is refused just the same (what runs is what is shown).
    source = copy_migrations(tmp_path / "inside")
    (source / "public" / "0004_alias.sql").symlink_to(source / "public" / "0001_users_and_auth.sql")
    with pytest.raises(PushError, match=r"0004_alias\.sql: is a symbolic link"):
        discover(source, CATALOG)


def test_hidden_files_and_readmes_beside_schemas_are_ignored(tmp_path: Path) -> None:
    source = copy_migrations(tmp_path)
    write(source / "README.md", "# migrations")
    write(source / "public" / ".gitkeep", "")
    assert len(discover(source, CATALOG)) == len(discover(MIGRATIONS, CATALOG))


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 'COMMIT;'; -- COMMIT\n",
        "/* ROLLBACK; */ SELECT 1;",
        'CREATE TABLE "end" (a int);',
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM 1; END $$;",
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
        "SET search_path = plugin_x; SET LOCAL statement_timeout = '5s';",
    ],
)
def test_statements_that_look_like_transaction_control_are_allowed(text: str) -> None:
    assert forbidden_statement(text) is None


def test_statements_split_where_postgresql_would() -> None:
    text = (
        "SELECT ';' -- ;\n;"
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n"
        "/* ; */ SELECT $body$ ; $body$;\n"
        "  \n"
        "SELECT 3"
    )
    assert [text[start:end] for start, end in statements(text)] == [
        "SELECT ';' -- ;\n",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
        "SELECT $body$ ; $body$",  # a statement starts after its leading comment
        "SELECT 3",
    ]


def _ledger_of(migrations: Any) -> list[LedgerEntry]:
    return [LedgerEntry(m.schema, m.version, m.file_name, m.checksum) for m in migrations]


def test_pending_is_what_the_ledger_lacks() -> None:
    migrations = discover(MIGRATIONS, CATALOG)
    assert pending(migrations, [], CATALOG) == tuple(migrations)
    assert pending(migrations, _ledger_of(migrations[:3]), CATALOG) == tuple(migrations[3:])
    assert pending(migrations, _ledger_of(migrations), CATALOG) == ()


def test_an_applied_file_that_changed_stops_the_push(tmp_path: Path) -> None:
    source = copy_migrations(tmp_path)
    ledger = _ledger_of(discover(source, CATALOG))
    changed = source / "plugin_wallet" / "0001_wallets.sql"
    changed.write_text(changed.read_text() + "\n-- one more line\n")
    with pytest.raises(
        PushError, match=r"plugin_wallet/0001_wallets.sql: changed since it was applied"
    ):
        pending(discover(source, CATALOG), ledger, CATALOG)


def test_an_applied_file_that_is_missing_or_renamed_stops_the_push(tmp_path: Path) -> None:
    source = copy_migrations(tmp_path)
    ledger = _ledger_of(discover(source, CATALOG))
    (source / "public" / "0002_plugins_and_teams.sql").rename(source / "public" / "0002_teams.sql")
    with pytest.raises(PushError, match=r"was applied as 0002_plugins_and_teams\.sql"):
        pending(discover(source, CATALOG), ledger, CATALOG)
    (source / "public" / "0002_teams.sql").unlink()
    with pytest.raises(PushError, match=r"0002_plugins_and_teams\.sql: was applied .* missing"):
        pending(discover(source, CATALOG), ledger, CATALOG)


def test_a_new_file_older_than_the_applied_ones_is_refused(tmp_path: Path) -> None:
    source = copy_migrations(tmp_path)
    (source / "plugin_community" / "0002_votes_and_badges.sql").rename(
        source / "plugin_community" / "0003_votes_and_badges.sql"
    )
    ledger = _ledger_of(discover(source, CATALOG))
    write(source / "plugin_community" / "0002_late.sql", "SELECT 1;")
    with pytest.raises(
        PushError, match=r"0002_late\.sql: is older than plugin_community's applied"
    ):
        pending(discover(source, CATALOG), ledger, CATALOG)


def test_history_of_a_removed_plugin_is_left_alone() -> None:
    migrations = discover(MIGRATIONS, CATALOG)
    gone = LedgerEntry("plugin_retired", 1, "0001_old.sql", "0" * 64)
    assert pending(migrations, [*_ledger_of(migrations), gone], CATALOG) == ()


# ---------------------------------------------------------------- the connection


def test_the_url_comes_from_the_environment_only() -> None:
    assert resolve_database_url({"DATABASE_URL": " postgresql://u:p@h/naap "}) == (
        "postgresql://u:p@h/naap"
    )
    with pytest.raises(
        ConnectionError_, match="neither DATABASE_URL nor NAAPDB_DATABASE_SECRET_ID"
    ):
        resolve_database_url({})


def test_an_rds_secret_becomes_a_tls_url_with_every_part_quoted() -> None:
    secret = {
        "engine": "postgres",
        "host": "naap.abc.us-east-1.rds.amazonaws.com",
        "port": 5432,
        "dbname": "naap",
        "username": "naap_migrator_b",
        "password": "p@ss/w:rd?#%",
    }
    params = conninfo_to_dict(url_from_secret(json.dumps(secret)))
    assert params == {
        "host": secret["host"],
        "port": "5432",
        "dbname": "naap",
        "user": "naap_migrator_b",
        "password": secret["password"],
        "sslmode": "verify-full",
        "sslrootcert": str(rds_ca.BUNDLE),
    }
    with pytest.raises(ConnectionError_, match="has no `password`"):
        url_from_secret(json.dumps({**secret, "password": ""}))
    with pytest.raises(ConnectionError_, match="not JSON"):
        url_from_secret("host=x")


@pytest.mark.aws
def test_the_secret_path_reads_awscurrent_after_a_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL")  # moto answers only the real endpoints
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        document = {
            "host": "db.internal",
            "port": 5432,
            "dbname": "naap",
            "username": "naap_migrator_a",
            "password": "first-password",
        }
        arn = client.create_secret(
            Name="naap-db/dev/naap_migrator", SecretString=json.dumps(document)
        )["ARN"]
        environ = {SECRET_ID_VARIABLE: arn, "DATABASE_URL": "postgresql://stale:stale@x/naap"}
        first = conninfo_to_dict(resolve_database_url(environ))
        assert (first["user"], first["password"]) == ("naap_migrator_a", "first-password")
        # A rotation moves AWSCURRENT to the other login: the push follows it.
        rotated = {**document, "username": "naap_migrator_b", "password": "second-password"}
        client.put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))
        second = conninfo_to_dict(resolve_database_url(environ))
        assert (second["user"], second["password"]) == ("naap_migrator_b", "second-password")
        assert second["sslmode"] == "verify-full"
        with pytest.raises(ConnectionError_, match="cannot read the secret") as caught:
            resolve_database_url({SECRET_ID_VARIABLE: "naap-db/dev/nobody"})
        assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- a real server


@dataclass
class Database:
    """A server with the access plan applied and the migrator's URL."""

    server: PgServer
    url: str

    def query(self, text: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.server.conninfo(), autocommit=True) as connection:
            return connection.execute(text, params or None).fetchall()  # type: ignore[arg-type]

    def login(self, role: str) -> psycopg.Connection[Any]:
        return self.server.connect(user=role, password=LOGIN_PASSWORD)

    def ledger(self) -> list[tuple[Any, ...]]:
        if not self.query("SELECT to_regclass('naap_meta.schema_migrations')")[0][0]:
            return []
        return self.query(
            "SELECT schema, version, name, checksum, applied_at, duration_ms "
            "FROM naap_meta.schema_migrations ORDER BY schema, version"
        )

    def snapshot(self) -> dict[str, Any]:
        """Every relation, column and function of the push's schemas, and the ledger."""
        schemas = [*CATALOG.schemas, names.META_SCHEMA]
        return {
            "relations": self.query(
                "SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = ANY(%s) ORDER BY 1, 2",
                schemas,
            ),
            "columns": self.query(
                "SELECT table_schema, table_name, column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = ANY(%s) ORDER BY 1, 2, 3",
                schemas,
            ),
            "functions": self.query(
                "SELECT n.nspname, p.proname FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = ANY(%s) ORDER BY 1, 2",
                schemas,
            ),
            "ledger": self.ledger(),
        }


@pytest.fixture(scope="module")
def cluster(pg_clusters: ClusterFactory) -> Iterator[PgServer]:
    """A server of this module's own: the push changes no role, so its tests
    share the cluster and get a fresh database `naap` each."""
    server = pg_clusters.start()
    yield server
    pg_clusters.discard(server)


@pytest.fixture
def database(cluster: PgServer) -> Database:
    cluster.create_database()
    deploy(cluster, SETTINGS.plan, {names.MIGRATOR: MIGRATOR_PASSWORD}, LOGIN_PASSWORD)
    # Built here, every part quoted: the password holds URL delimiters.
    url = (
        f"postgresql://{names.MIGRATOR}:{quote(MIGRATOR_PASSWORD, safe='')}"
        f"@{cluster.host}:{cluster.port}/{names.DATABASE}?sslmode=disable"
    )
    return Database(cluster, url)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def push(
    database: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """`push(source, *extra)`: `python -m naapdb push` in this process, as the
    migrator and each schema's push login (the stack's push key exported)."""
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.setenv(PUSH_KEY_VARIABLE, PUSH_KEY)

    def run(source: Path = MIGRATIONS, *extra: str) -> Outcome:
        capsys.readouterr()
        code = main(["push", "--source", str(source), "--project", str(ROOT), *extra])
        captured = capsys.readouterr()
        for text in (captured.out, captured.err):
            assert MIGRATOR_PASSWORD not in text and "m1grator%2Fpw" not in text
            assert PUSH_KEY not in text
            assert not any(password in text for password in push_passwords(SETTINGS.plan).values())
        return Outcome(code, captured.out, captured.err)

    yield run


def sample_tables() -> set[tuple[str, str]]:
    return {
        (match[1], match[2])
        for path in MIGRATIONS.rglob("*.sql")
        for match in CREATE_TABLE.finditer(path.read_text())
    }


@pytest.mark.db
def test_full_push_creates_every_table_owned_by_its_schemas_owner(
    database: Database, push: Any
) -> None:
    outcome = push()
    assert outcome.code == 0, outcome.err
    migrations = discover(MIGRATIONS, CATALOG)
    lines = outcome.out.splitlines()
    for migration, line in zip(migrations, lines, strict=False):
        assert re.fullmatch(rf"applied {re.escape(migration.label)} \(\d+ ms\)", line), line
    assert lines[-1].startswith(f"applied {len(migrations)} migrations in ")

    tables = database.query(
        "SELECT schemaname, tablename, tableowner FROM pg_tables WHERE schemaname = ANY(%s)",
        list(CATALOG.schemas),
    )
    assert {(schema, table) for schema, table, _ in tables} == sample_tables()
    assert len(sample_tables()) >= 20
    assert {(schema, owner) for schema, _, owner in tables} == {
        (schema, f"{schema}_owner") for schema, _ in sample_tables()
    }
    others = database.query(
        "SELECT n.nspname, c.relname, c.relowner::regrole::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relowner <> "
        "  (CASE n.nspname WHEN %s THEN %s ELSE n.nspname || '_owner' END)::regrole",
        [*CATALOG.schemas, names.META_SCHEMA],
        names.META_SCHEMA,
        names.OWNER,
    )
    assert others == []  # indexes, sequences and the ledger (naap_owner's) too

    ledger = database.ledger()
    assert [(row[0], row[1], row[2], row[3]) for row in ledger] == sorted(
        (m.schema, m.version, m.file_name, m.checksum) for m in migrations
    )
    assert database.query(
        "SELECT tableowner FROM pg_tables "
        "WHERE schemaname = 'naap_meta' AND tablename = 'schema_migrations'"
    ) == [(names.OWNER,)]


@pytest.mark.db
def test_second_push_is_a_no_op(database: Database, push: Any) -> None:
    assert push().code == 0
    before = database.snapshot()
    outcome = push()
    assert (outcome.code, outcome.out) == (0, "up to date\n")
    assert database.snapshot() == before
    dry = push(MIGRATIONS, "--dry-run")
    assert (dry.code, dry.out) == (0, "up to date\n")


@pytest.mark.db
def test_no_op_push_sends_two_statements(database: Database) -> None:
    from naapdb import push as push_module
    from naapdb.connection import connect

    migrations = discover(MIGRATIONS, CATALOG)
    schemas = push_module.schema_connector(database.url, PUSH_KEY, lambda login: 0)
    with connect(database.url, autocommit=True) as connection:
        first = push_module.push(connection, migrations, CATALOG, connect_schema=schemas)
    with connect(database.url, autocommit=True) as connection:
        # nothing to apply: no schema's login is needed (nor asked for)
        again = push_module.push(connection, migrations, CATALOG)
    assert len(first.applied) == len(migrations)
    assert (again.applied, again.statements) == ((), 2)  # the lock and the ledger


@pytest.mark.db
def test_dry_run_lists_and_changes_nothing(database: Database, push: Any) -> None:
    before = database.snapshot()
    outcome = push(MIGRATIONS, "--dry-run")
    assert outcome.code == 0
    labels = [m.label for m in discover(MIGRATIONS, CATALOG)]
    assert outcome.out.splitlines() == [
        *(f"would apply {label}" for label in labels),
        f"{len(labels)} to apply (dry run)",
    ]
    assert database.snapshot() == before
    assert database.ledger() == []


@pytest.mark.db
def test_the_stack_names_the_source_and_labels_are_relative(
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database.url)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NAAPDB_STACK", "dev")
    assert main(["push", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "would apply migrations/public/0001_users_and_auth.sql"
    assert len(lines) == len(discover(MIGRATIONS, CATALOG)) + 1


@pytest.mark.db
def test_plugin_roles_use_their_new_tables_at_once(database: Database, push: Any) -> None:
    assert push().code == 0
    base = database.login("naap_base")
    user_id = base.execute(
        'INSERT INTO public."User" ("email") VALUES (%s) RETURNING "id"', ("ada@example.org",)
    ).fetchone()[0]  # type: ignore[index]

    community = database.login("naap_community")
    # The foreign key to public."User" is checked as the table owner.
    post_id = community.execute(
        'INSERT INTO plugin_community."CommunityPost" ("authorId", "title", "body") '
        "VALUES (%s, 'Hello', 'First post') RETURNING \"id\"",
        (user_id,),
    ).fetchone()[0]  # type: ignore[index]
    community.execute(
        'INSERT INTO plugin_community."CommunityVote" ("postId", "userId", "value") '
        "VALUES (%s, %s, 1)",
        (post_id, user_id),
    )
    assert community.execute("SELECT plugin_community.post_score(%s)", (post_id,)).fetchone() == (
        1,
    )
    assert community.execute('SELECT "email" FROM public."User"').fetchall() == [
        ("ada@example.org",)
    ]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        community.execute(
            'INSERT INTO plugin_community."CommunityPost" ("authorId", "title", "body") '
            "VALUES ('no-such-user', 'x', 'y')"
        )

    gateway = database.login("naap_gateway")
    gateway_id = gateway.execute(
        'INSERT INTO plugin_gateway."Gateway" ("ownerId", "name", "address", "region") '
        "VALUES (%s, 'gw', 'https://gw.example', 'eu') RETURNING \"id\"",
        (user_id,),
    ).fetchone()[0]  # type: ignore[index]
    # bigserial: the sequence is usable through the default privileges too.
    metric = gateway.execute(
        'INSERT INTO plugin_gateway."GatewayMetric" ("gatewayId", "latencyMs", "successRate") '
        'VALUES (%s, 42, 0.99) RETURNING "id"',
        (gateway_id,),
    ).fetchone()
    assert metric is not None and metric[0] >= 1

    readonly = database.login("naap_readonly")
    assert readonly.execute('SELECT count(*) FROM plugin_community."CommunityPost"').fetchone() == (
        1,
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        readonly.execute('DELETE FROM plugin_community."CommunityPost"')


FORBIDDEN = [
    ("naap_community", 'SELECT * FROM plugin_wallet."WalletConnection"'),
    (
        "naap_community",
        'INSERT INTO plugin_dashboard."DashboardPreference" ("userId") VALUES (\'x\')',
    ),
    ("naap_community", 'INSERT INTO public."User" ("email") VALUES (\'x@example.org\')'),
    ("naap_community", "CREATE TABLE plugin_community.sneaky (id int)"),
    ("naap_community", "SELECT * FROM naap_meta.schema_migrations"),
    ("naap_wallet", "SELECT plugin_community.post_score('x')"),
    ("naap_wallet", 'DROP TABLE plugin_wallet."WalletTransaction"'),
    ("naap_wallet", 'ALTER TABLE plugin_wallet."WalletTransaction" ADD COLUMN x int'),
    ("naap_developer_api", 'SELECT * FROM plugin_gateway."Gateway"'),
    ("naap_readonly", 'UPDATE public."User" SET "name" = \'x\''),
]


@pytest.mark.db
def test_plugin_roles_cannot_touch_what_is_not_theirs(database: Database, push: Any) -> None:
    assert push().code == 0
    for role, statement in FORBIDDEN:
        connection = database.login(role)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(statement)  # type: ignore[arg-type]
            pytest.fail(f"{role} may run: {statement}")


@pytest.mark.db
def test_unqualified_objects_land_in_the_files_schema(
    database: Database, push: Any, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    write(
        source / "plugin_wallet" / "0002_notes.sql",
        "CREATE TABLE wallet_note (id int PRIMARY KEY);",
    )
    assert push(source).code == 0
    assert database.query("SELECT to_regclass('plugin_wallet.wallet_note')::text") == [
        ("plugin_wallet.wallet_note",)
    ]
    wallet = database.login("naap_wallet")
    assert wallet.execute("SELECT count(*) FROM plugin_wallet.wallet_note").fetchone() == (0,)


def _assert_stopped(outcome: Outcome, *fragments: str) -> None:
    assert outcome.code == 2
    assert outcome.err.startswith("error: ")
    assert len(outcome.err.strip().splitlines()) == 1, outcome.err
    for fragment in fragments:
        assert fragment in outcome.err


@pytest.mark.db
def test_changed_applied_file_stops_before_anything_runs(
    database: Database, push: Any, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    assert push(source).code == 0
    write(source / "public" / "0004_more.sql", 'CREATE TABLE public."More" (id int);')
    changed = source / "plugin_gateway" / "0001_gateways.sql"
    changed.write_text(changed.read_text().replace("'offline'", "'unknown'"))
    before = database.snapshot()
    _assert_stopped(push(source), f"{changed}: changed since it was applied")
    assert database.snapshot() == before  # 0004_more.sql did not run


@pytest.mark.db
def test_missing_applied_file_stops_before_anything_runs(
    database: Database, push: Any, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    assert push(source).code == 0
    write(source / "plugin_wallet" / "0002_more.sql", "CREATE TABLE plugin_wallet.more (id int);")
    (source / "public" / "0003_rbac.sql").unlink()
    before = database.snapshot()
    _assert_stopped(push(source), "public/0003_rbac.sql: was applied", "file is missing")
    assert database.snapshot() == before


@pytest.mark.db
def test_failing_migration_rolls_back_and_names_file_line_and_error(
    database: Database, push: Any, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    assert push(source).code == 0
    write(source / "public" / "0004_extra.sql", 'CREATE TABLE public."Extra" (id int);')
    broken = write(
        source / "plugin_community" / "0003_broken.sql",
        "-- adds a column, then refers to a table that is not there\n"
        'ALTER TABLE plugin_community."CommunityPost" ADD COLUMN "views" integer;\n'
        'SELECT * FROM plugin_community."NoSuchTable";\n',
    )
    write(source / "plugin_wallet" / "0002_after.sql", "CREATE TABLE plugin_wallet.after (id int);")
    before = database.snapshot()
    outcome = push(source)
    _assert_stopped(
        outcome,
        f"{broken}:3:15:",
        'relation "plugin_community.NoSuchTable" does not exist',
        "[42P01]",
        "rolled back",
    )
    lines = outcome.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"applied {source}/public/0004_extra.sql (")
    after = database.snapshot()
    # Only the file before the failing one is new: the failing file's column
    # is rolled back and the file after it never ran.
    new_rows = [row[:3] for row in after["ledger"] if row not in before["ledger"]]
    assert new_rows == [("public", 4, "0004_extra.sql")]
    assert ("plugin_community", "CommunityPost", "views", "integer") not in after["columns"]
    assert not any(r[1] == "after" for r in after["relations"])


@pytest.mark.db
def test_an_error_without_a_position_is_located_by_statement(
    database: Database, push: Any, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    assert push(source).code == 0
    broken = write(
        source / "plugin_daydream" / "0002_again.sql",
        "CREATE TABLE plugin_daydream.fresh (id int);\n\n"
        '  CREATE INDEX "DaydreamSession_userId_idx"\n'
        '    ON plugin_daydream."DaydreamSession" ("userId");\n',
    )
    before = database.snapshot()
    _assert_stopped(
        push(source),
        f'{broken}:3:3: relation "DaydreamSession_userId_idx" already exists [42P07]',
    )
    assert database.snapshot() == before  # the replay that located it was rolled back too


@pytest.mark.db
@pytest.mark.parametrize(
    ("relative", "fragment"),
    [
        ("plugin_unknown/0001_x.sql", "schema plugin_unknown is not in the catalogue"),
        ("public/04_short.sql", "not a migration file name"),
    ],
)
def test_bad_files_stop_the_push_with_nothing_applied(
    database: Database, push: Any, tmp_path: Path, relative: str, fragment: str
) -> None:
    source = copy_migrations(tmp_path)
    write(source / relative, "CREATE TABLE public.never (id int);")
    before = database.snapshot()
    _assert_stopped(push(source), fragment)
    assert database.snapshot() == before
    assert database.ledger() == []


@pytest.mark.db
def test_a_login_that_is_not_the_migrator_is_refused(
    database: Database, push: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", database.server.url(user="naap_app", password=LOGIN_PASSWORD)
    )
    before = database.snapshot()
    outcome = push()
    _assert_stopped(outcome, names.MIGRATOR)
    assert LOGIN_PASSWORD not in outcome.err
    assert database.snapshot() == before


@pytest.mark.db
def test_a_ledger_handed_to_the_admin_is_named_with_the_way_back(
    database: Database, push: Any
) -> None:
    """What `pulumi destroy` leaves (the provider's REASSIGN OWNED BY
    naap_owner gives kept objects to the admin): the push names the owner and
    the way back instead of blaming the login, and the way back, `adopt` as
    the admin (what `pulumi up` runs), is all it takes."""
    assert push().code == 0
    database.server.execute(f"ALTER TABLE naap_meta.schema_migrations OWNER TO {SUPERUSER}")
    outcome = push(MIGRATIONS, "--stack", "dev")
    # The way back names the stack.
    _assert_stopped(outcome, f"owned by {SUPERUSER}, not {names.OWNER}", "adopt --stack dev")
    admin = database.server.url()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATABASE_URL", admin)
        assert main(["adopt", "--stack", "dev", "--project", str(ROOT)]) == 0
    assert push().out == "up to date\n"


@pytest.mark.db
def test_a_bad_password_is_reported_without_it(
    database: Database, push: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", database.server.url(user=names.MIGRATOR, password="wrong-secret-value")
    )
    outcome = push()
    _assert_stopped(outcome, "password authentication failed")
    assert "wrong-secret-value" not in outcome.err


@pytest.mark.db
def test_two_concurrent_pushes_apply_a_new_migration_once(
    database: Database, tmp_path: Path
) -> None:
    source = copy_migrations(tmp_path)
    write(
        source / "public" / "0004_audit.sql",
        'CREATE TABLE public."AuditLog" (id bigserial PRIMARY KEY);',
    )
    environment = {**os.environ, "DATABASE_URL": database.url, PUSH_KEY_VARIABLE: PUSH_KEY}
    command = [sys.executable, "-m", "naapdb", "push", "--source", str(source)]
    with database.server.connect() as holder:
        # Hold the push lock so both processes are provably waiting at once.
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        processes = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while database.query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ) != [(2,)]:
            assert time.monotonic() < deadline, "the pushes never waited for the lock"
            assert all(p.poll() is None for p in processes), [p.communicate() for p in processes]
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], results
    outs = sorted(out for out, _ in results)
    assert "another push holds the lock; waiting for it" in results[0][1]
    assert "another push holds the lock; waiting for it" in results[1][1]
    # One applied everything, the other then found nothing to do.
    assert outs[1] == "up to date\n"
    assert f"applied {source}/public/0004_audit.sql" in outs[0]
    assert database.query(
        "SELECT count(*) FROM naap_meta.schema_migrations WHERE schema = 'public' AND version = 4"
    ) == [(1,)]
    assert len(database.ledger()) == len(discover(source, CATALOG))


def test_a_secret_gets_verify_full_with_the_rds_ca_whatever_it_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Issue 21, gap 3: an RDS secret (only RDS keeps them) is reached with
    verify-full against the RDS CA bundle: a secret saying `require` or
    `disable` gets it too, and another bundle than the pinned one must be
    trusted out loud."""
    secret = {
        "host": "naap.abc.us-east-1.rds.amazonaws.com",
        "username": "naap_migrator_a",
        "password": "pw0123456789",
    }
    for sslmode in ("verify-full", "require", "disable", None):
        params = conninfo_to_dict(url_from_secret(json.dumps({**secret, "sslmode": sslmode})))
        assert (params["sslmode"], params["sslrootcert"]) == ("verify-full", str(rds_ca.BUNDLE))
    other = tmp_path / "rds global.pem"
    other.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("NAAPDB_SSLROOTCERT", str(other))
    with pytest.raises(ConnectionError_) as caught:
        url_from_secret(json.dumps(secret))
    assert str(caught.value).startswith(f"NAAPDB_SSLROOTCERT: {other} is not the pinned")
    monkeypatch.setenv("NAAPDB_TRUST_CA_BUNDLE", "1")
    assert conninfo_to_dict(url_from_secret(json.dumps(secret)))["sslrootcert"] == str(other)
    # The committed bundle itself, named by the variable, needs no flag.
    monkeypatch.delenv("NAAPDB_TRUST_CA_BUNDLE")
    monkeypatch.setenv("NAAPDB_SSLROOTCERT", str(rds_ca.BUNDLE))
    assert conninfo_to_dict(url_from_secret(json.dumps(secret)))["sslrootcert"] == str(
        rds_ca.BUNDLE
    )

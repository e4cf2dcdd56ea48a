"""Rotation of alternating logins: Secrets Manager under moto, a real
PostgreSQL with the access plan applied (alternating rotation) and real
password authentication.

The master secret holds the test server's superuser, the way RDS keeps its
master login; each identity's secret starts on its `_a` login, as
`pulumi up` leaves it: `_a` has its generated password, `_b` has none (no
password authentication succeeds for it) until the first rotation."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from naapdb import rds_ca, rotate
from naapdb.__main__ import main
from naapdb.plan import AccessPlan, Rotation, build_plan
from naapdb.rotate import (
    CURRENT,
    PENDING,
    PREVIOUS,
    STEPS,
    DbSecret,
    RotationError,
    handle,
    other_login,
    rotate_now,
    run_step,
)
from naapdb.rotation_secret import identity_of
from naapdb.sql import plan_to_sql
from naapdb.stackfiles import load_stack_settings
from tests.harness import ROOT
from tests.pgserver import PgServer, _run_as
from tests.rotation_load import run_rotation_load
from tests.tlsca import CaFiles, make_ca
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = [pytest.mark.db, pytest.mark.aws]

APP_SECRET = "naap-db/test/naap_app"


@dataclass
class Deployment:
    """A server with the plan applied, and the secrets `pulumi up` would leave."""

    pg: PgServer
    client: Any
    plan: AccessPlan
    master_arn: str
    secret_ids: dict[str, str]
    initial_passwords: dict[str, str]
    """The `_a` logins' generated passwords (the `_b` logins have none)."""

    def secret(self, secret_id: str, stage: str = CURRENT) -> DbSecret:
        value = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        return DbSecret.parse(value["SecretString"], stage)

    def version_of(self, secret_id: str, stage: str) -> str | None:
        versions = self.client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        return next((v for v, stages in versions.items() if stage in stages), None)

    def stages(self, secret_id: str) -> dict[str, list[str]]:
        versions = self.client.describe_secret(SecretId=secret_id)["VersionIdsToStages"]
        return {version: sorted(stages) for version, stages in versions.items()}

    def every_password(self) -> set[str]:
        """Every password any version of any secret ever held, and the master's."""
        found = {self.pg.password, *self.initial_passwords.values()}
        for secret_id in self.secret_ids.values():
            listed = self.client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
            for version in listed["Versions"]:
                value = self.client.get_secret_value(
                    SecretId=secret_id, VersionId=version["VersionId"]
                )
                found.add(json.loads(value["SecretString"])["password"])
        return found

    def stored_verifier(self, role: str) -> str | None:
        """The role's stored password verifier; None when it has no password."""
        with self.pg.connect() as connection:
            row = connection.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
            ).fetchone()
        assert row is not None, f"no role {role}"
        return None if row[0] is None else str(row[0])


def logs_in(secret: DbSecret) -> bool:
    try:
        with psycopg.connect(secret.conninfo(), autocommit=True) as connection:
            row = connection.execute("SELECT current_user::text").fetchone()
            return row is not None and row[0] == secret.username
    except psycopg.OperationalError:
        return False


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Secrets Manager under moto (the suite's guard points AWS at a closed port)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


TLS_HOST = "localhost"  # the name in the test server's certificate


@pytest.fixture
def rotation_ca(
    tls_build: TlsBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[TlsBuild, CaFiles]:
    """The test's major built with OpenSSL and a test CA the rotation trusts
    explicitly (`NAAPDB_SSLROOTCERT` with `NAAPDB_TRUST_CA_BUNDLE=1`), as the
    Lambda trusts its bundled RDS CA: every rotation connection is verify-full."""
    ca = make_ca(tmp_path / "ca", (TLS_HOST,))
    monkeypatch.setenv(rds_ca.SSLROOTCERT_VARIABLE, str(ca.ca_cert))
    monkeypatch.setenv(rds_ca.TRUST_VARIABLE, "1")
    return tls_build, ca


@pytest.fixture
def deployed(aws: Any, rotation_ca: tuple[TlsBuild, CaFiles]) -> Iterator[Deployment]:
    """A TLS server (certificate for `localhost` from the test CA) with the
    plan applied and the secrets `pulumi up` leaves, on verify-full."""
    with tls_server(*rotation_ca) as server:
        yield deploy(server, aws)


def deploy(
    fresh_pg: PgServer, aws: Any, host: str = TLS_HOST, sslmode: str = "verify-full"
) -> Deployment:
    """The plan applied on `fresh_pg`, and the secrets `pulumi up` leaves,
    naming the server as `host` with `sslmode`."""
    plan = build_plan(load_stack_settings("prod", ROOT).catalog, Rotation.ALTERNATING)
    fresh_pg.execute(plan_to_sql(plan))  # every role without a password
    # What `pulumi up` sets: the first login of each identity only.
    passwords = {role.name: secrets.token_hex(20) for role in plan.first_logins}
    assert set(passwords) == {f"{identity}_a" for identity in plan.identities}
    fresh_pg.set_passwords(passwords)
    master = aws.create_secret(
        Name="rds!db-test",
        SecretString=json.dumps(
            {
                "username": "postgres",
                "password": fresh_pg.password,
                "host": host,
                "port": fresh_pg.port,
                "sslmode": sslmode,
            }
        ),
    )
    secret_ids = {}
    for identity in plan.identities:
        first = plan.logins_of(identity)[0]
        document = DbSecret(
            host=host,
            port=fresh_pg.port,
            dbname="naap",
            username=first,
            password=passwords[first],
            masterarn=master["ARN"],
            sslmode=sslmode,
        )
        created = aws.create_secret(
            Name=f"naap-db/test/{identity}", SecretString=document.to_json()
        )
        secret_ids[identity] = created["ARN"]
    return Deployment(fresh_pg, aws, plan, master["ARN"], secret_ids, passwords)


def restart(server: PgServer, down: bool) -> None:
    """Stop (`down`) or start the test server again on its port."""
    pg_ctl = str(server.bin_dir / "pg_ctl")
    if down:
        command = [pg_ctl, "-D", str(server.data_dir), "-m", "fast", "-w", "stop"]
    else:
        sockets = tempfile.mkdtemp(prefix="pgsock")
        subprocess.run(["chmod", "777", sockets], check=True)
        command = [
            pg_ctl,
            "-D",
            str(server.data_dir),
            "-o",
            f"-h 127.0.0.1 -p {server.port} -k {sockets}",
            "-l",
            str(server.data_dir / "server.log"),
            "-w",
            "start",
        ]
    subprocess.run(command, check=True, capture_output=True, **_run_as(server.version))  # type: ignore[arg-type]


# --- names -------------------------------------------------------------------


def test_the_other_login_alternates_between_a_and_b() -> None:
    assert other_login("naap_app_a") == "naap_app_b"
    assert other_login("naap_app_b") == "naap_app_a"
    assert identity_of("naap_community_b") == "naap_community"
    with pytest.raises(RotationError, match="not an alternating login"):
        other_login("naap_app")


def test_a_secret_lacking_a_field_names_the_field_not_a_value() -> None:
    with pytest.raises(RotationError, match="lacks host, masterarn") as caught:
        DbSecret.parse(
            json.dumps(
                {
                    "engine": "postgres",
                    "port": 5432,
                    "dbname": "naap",
                    "username": "u",
                    "password": "s3cr3t-value",
                }
            ),
            "AWSCURRENT",
        )
    assert "s3cr3t-value" not in str(caught.value)
    assert (
        DbSecret.parse(
            json.dumps(
                {
                    "engine": "postgres",
                    "host": "h",
                    "port": 1,
                    "dbname": "naap",
                    "username": "u",
                    "password": "p",
                    "masterarn": "arn",
                }
            ),
            "x",
        ).sslmode
        == "verify-full"
    )
    assert "s3cr3t" not in repr(DbSecret("h", 1, "naap", "u", "s3cr3t", "arn"))


# --- rotation ------------------------------------------------------------------


def test_the_idle_login_cannot_log_in_before_the_first_rotation(deployed: Deployment) -> None:
    current = deployed.secret(APP_SECRET)
    assert current.username == "naap_app_a" and logs_in(current)
    assert deployed.stored_verifier("naap_app_b") is None
    # no password at all: PostgreSQL refuses every password, even the empty one
    for guess in (current.password, "", "naap_app_b"):
        assert not logs_in(replace(current, username="naap_app_b", password=guess))


def test_rotation_makes_the_other_login_current_with_a_new_password(deployed: Deployment) -> None:
    before = deployed.secret(APP_SECRET)
    assert before.username == "naap_app_a" and logs_in(before)
    assert deployed.stored_verifier("naap_app_b") is None  # never had a password
    result = rotate_now(deployed.client, APP_SECRET)
    after = deployed.secret(APP_SECRET)
    assert (result.username, result.previous_username) == ("naap_app_b", "naap_app_a")
    assert after.username == "naap_app_b"
    assert deployed.stored_verifier("naap_app_b") is not None  # setSecret gave it one
    assert after.password != before.password
    assert len(after.password) >= 32 and after.password.isalnum()
    assert logs_in(after)
    # Clients still holding the previous version keep working.
    previous = deployed.secret(APP_SECRET, PREVIOUS)
    assert (previous.username, previous.password) == (before.username, before.password)
    assert logs_in(previous)
    # No rotation is left half-way: nothing carries AWSPENDING.
    assert deployed.version_of(APP_SECRET, PENDING) is None
    # The new login has the identity's rights, not more.
    with psycopg.connect(after.conninfo(), autocommit=True) as connection:
        assert connection.execute(
            "SELECT has_schema_privilege('plugin_wallet', 'USAGE'),"
            " has_schema_privilege('naap_meta', 'USAGE')"
        ).fetchone() == (True, False)


def test_the_next_rotation_alternates_back(deployed: Deployment) -> None:
    first = deployed.secret(APP_SECRET)
    rotate_now(deployed.client, APP_SECRET)
    second = deployed.secret(APP_SECRET)
    rotate_now(deployed.client, APP_SECRET)
    third = deployed.secret(APP_SECRET)
    assert [first.username, second.username, third.username] == [
        "naap_app_a",
        "naap_app_b",
        "naap_app_a",
    ]
    assert third.password != first.password
    assert logs_in(third) and not logs_in(first)  # _a's old password is gone
    assert deployed.secret(APP_SECRET, PREVIOUS).username == "naap_app_b"
    assert logs_in(deployed.secret(APP_SECRET, PREVIOUS))


def test_rotation_touches_only_its_own_identity(deployed: Deployment) -> None:
    others = {i: deployed.secret(s) for i, s in deployed.secret_ids.items() if i != "naap_app"}
    logins = [role.name for role in deployed.plan.login_roles]
    verifiers = {login: deployed.stored_verifier(login) for login in logins}
    rotate_now(deployed.client, deployed.secret_ids["naap_migrator"])
    rotate_now(deployed.client, APP_SECRET)
    changed = {login for login in verifiers if deployed.stored_verifier(login) != verifiers[login]}
    assert changed == {"naap_migrator_b", "naap_app_b"}
    for identity, secret in others.items():
        if identity != "naap_migrator":
            assert deployed.secret(deployed.secret_ids[identity]) == secret


def test_every_step_run_twice_changes_nothing_more(deployed: Deployment) -> None:
    token = str(uuid.uuid4())
    for step in STEPS:
        run_step(deployed.client, APP_SECRET, token, step)
        state = (
            deployed.stages(APP_SECRET),
            deployed.secret(APP_SECRET, CURRENT),
            deployed.stored_verifier("naap_app_a"),
            deployed.stored_verifier("naap_app_b"),
        )
        run_step(deployed.client, APP_SECRET, token, step)
        again = (
            deployed.stages(APP_SECRET),
            deployed.secret(APP_SECRET, CURRENT),
            deployed.stored_verifier("naap_app_a"),
            deployed.stored_verifier("naap_app_b"),
        )
        assert again == state, step
    assert deployed.secret(APP_SECRET).username == "naap_app_b"
    assert deployed.version_of(APP_SECRET, CURRENT) == token
    assert logs_in(deployed.secret(APP_SECRET))


def test_the_lambda_handler_runs_only_with_rotation_enabled(deployed: Deployment) -> None:
    token = str(uuid.uuid4())
    event = {"SecretId": APP_SECRET, "ClientRequestToken": token, "Step": "createSecret"}
    with pytest.raises(RotationError, match="does not have rotation enabled"):
        handle(deployed.client, event)
    # Turn rotation on (moto has no Lambda to run; the handler is called below).
    deployed.client.rotate_secret(
        SecretId=APP_SECRET, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False
    )
    before = deployed.secret(APP_SECRET)
    for step in STEPS:
        handle(deployed.client, {**event, "Step": step})
    after = deployed.secret(APP_SECRET)
    assert after.username == other_login(before.username) and logs_in(after)
    with pytest.raises(RotationError, match="unknown rotation step"):
        handle(deployed.client, {**event, "Step": "dropSecret"})


def test_a_failing_test_step_leaves_the_current_login_unchanged(deployed: Deployment) -> None:
    before_version = deployed.version_of(APP_SECRET, CURRENT)
    before = deployed.secret(APP_SECRET)
    deployed.pg.execute("REVOKE naap_app FROM naap_app_b")  # the idle login lost its rights
    with pytest.raises(RotationError, match=r"testSecret: .*CONNECT privilege"):
        rotate_now(deployed.client, APP_SECRET)
    # Able to log in, but not carrying the identity: still refused.
    deployed.pg.execute("GRANT CONNECT ON DATABASE naap TO naap_app_b")
    with pytest.raises(RotationError, match="testSecret: naap_app_b is not a member of naap_app"):
        rotate_now(deployed.client, APP_SECRET)
    assert deployed.version_of(APP_SECRET, CURRENT) == before_version
    assert deployed.secret(APP_SECRET) == before and logs_in(before)
    assert deployed.version_of(APP_SECRET, PENDING) is None  # the next rotation starts clean
    deployed.pg.execute(
        "REVOKE CONNECT ON DATABASE naap FROM naap_app_b; GRANT naap_app TO naap_app_b"
    )
    assert rotate_now(deployed.client, APP_SECRET).username == "naap_app_b"


def test_an_unreachable_database_leaves_the_current_login_unchanged(deployed: Deployment) -> None:
    before_version = deployed.version_of(APP_SECRET, CURRENT)
    before = deployed.secret(APP_SECRET)
    restart(deployed.pg, down=True)
    try:
        with pytest.raises(RotationError, match=r"setSecret: .*(cannot connect|refused)"):
            rotate_now(deployed.client, APP_SECRET)
        assert deployed.version_of(APP_SECRET, CURRENT) == before_version
        assert deployed.version_of(APP_SECRET, PENDING) is None
    finally:
        restart(deployed.pg, down=False)
    assert deployed.secret(APP_SECRET) == before and logs_in(before)
    assert rotate_now(deployed.client, APP_SECRET).username == "naap_app_b"


def test_a_pending_version_naming_another_role_is_refused(deployed: Deployment) -> None:
    token = str(uuid.uuid4())
    current = deployed.secret(APP_SECRET)
    forged = DbSecret(
        current.host,
        current.port,
        current.dbname,
        "postgres",
        "x" * 40,
        current.masterarn,
        sslmode=current.sslmode,
    )
    deployed.client.put_secret_value(
        SecretId=APP_SECRET,
        ClientRequestToken=token,
        SecretString=forged.to_json(),
        VersionStages=[PENDING],
    )
    superuser_verifier = deployed.stored_verifier("postgres")
    with pytest.raises(RotationError, match="refusing to rotate another identity's login"):
        run_step(deployed.client, APP_SECRET, token, "setSecret")
    assert deployed.stored_verifier("postgres") == superuser_verifier


def test_no_password_reaches_a_log_line_or_the_terminal(
    deployed: Deployment, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Everything at INFO (the Lambda's and the command's level), ours at DEBUG.
    # botocore's own DEBUG log dumps response bodies: never enable it in prod.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="naapdb")
    assert main(["rotate", "--secret-id", APP_SECRET, "--region", "us-east-1"]) == 0
    deployed.pg.execute("REVOKE naap_app FROM naap_app_a")
    assert main(["rotate", "--secret-id", APP_SECRET, "--region", "us-east-1"]) == 1
    restart(deployed.pg, down=True)
    try:
        assert main(["rotate", "--secret-id", APP_SECRET, "--region", "us-east-1"]) == 1
    finally:
        restart(deployed.pg, down=False)
    assert main(["rotate", "--secret-id", "naap-db/test/nobody", "--region", "us-east-1"]) == 2
    out, err = capsys.readouterr()
    assert "AWSCURRENT is now naap_app_b" in out
    assert "rotation of naap-db/test/naap_app failed: testSecret" in err
    assert any(r.name == rotate.__name__ for r in caplog.records)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for password in deployed.every_password():
        assert password not in logged
        assert password not in out and password not in err


# --- load --------------------------------------------------------------------


def test_clients_never_fail_to_connect_during_ten_rotations(
    deployed: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_rotation_load(
        deployed.client, APP_SECRET, clients=8, rotations=10, pause=0.2, max_seconds=90
    )
    with capsys.disabled():
        print(f"\nrotation load: {report.summary()}")
    assert not report.timed_out and report.rotations == 10
    assert report.failures == 0, report.errors
    assert report.connections > 8 * 10
    assert report.logins_used == {"naap_app_a", "naap_app_b"}
    assert deployed.secret(APP_SECRET).username == "naap_app_a"  # ten rotations: back on _a


# --- the Lambda's zip ------------------------------------------------------------


def _build_script() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build_rotation_lambda", ROOT / "scripts" / "build-rotation-lambda.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lambda_zip_is_reproducible_and_holds_the_handler(
    tmp_path: Path, locked_wheels: Path
) -> None:
    script = _build_script()
    first, second = tmp_path / "one.zip", tmp_path / "two.zip"
    assert script.main(["--wheels", str(locked_wheels), "--out", str(first)]) == 0
    assert script.main(["--wheels", str(locked_wheels), "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        infos = archive.infolist()
    entries = [info.filename for info in infos]
    assert entries == sorted(entries)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {(info.external_attr >> 16) & 0o777 for info in infos} == {0o644}
    assert {
        "naapdb/rotate.py",
        "psycopg/__init__.py",
        "psycopg_binary/__init__.py",
        "typing_extensions.py",
        "naapdb/rds-ca-bundle.pem",
    } <= set(entries)
    assert not any("__pycache__" in e or e.endswith(".pyc") for e in entries)
    # The handler the function names imports from the zip alone (no pulumi, no repo).
    probe = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import naapdb.rotate as r;"
            " print(r.lambda_handler.__module__)",
            str(first),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert probe.stdout.strip() == "naapdb.rotate", probe.stderr


def test_the_build_refuses_a_lock_without_psycopg_binary(
    tmp_path: Path, locked_wheels: Path, capsys: Any
) -> None:
    lock = tmp_path / "lock.txt"
    lines = (ROOT / "scripts" / "rotation-lambda.lock").read_text().split("\n")
    kept = "\n".join(line for line in lines if not line.startswith("#")).split("psycopg-binary")[0]
    lock.write_text(kept.rstrip().rstrip("\\") + "\n")
    out = tmp_path / "x.zip"
    arguments = ["--wheels", str(locked_wheels), "--out", str(out), "--lock", str(lock)]
    assert _build_script().main(arguments) == 2
    assert "locks no psycopg-binary wheel" in capsys.readouterr().err
    assert not out.exists()

"""The pooler and replica settings, the pools and both sides of the budget,
PgBouncer's rendered files, `plan`'s pools, and `dotenv`'s pooled and read
URLs: plain Python, no server (tests/naapdb/test_pooler_pgbouncer.py runs
the rendered config on a real PgBouncer)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from naapdb import names, pgbouncer, scram
from naapdb.__main__ import main
from naapdb.errors import ConfigError
from naapdb.plan import Rotation, build_plan
from naapdb.pooler import (
    POOLED_PURPOSES,
    ContainerPooler,
    Pool,
    RdsPooler,
    direct_logins,
    is_pooled,
    pools,
)
from naapdb.settings import StackSettings, parse_settings
from naapdb.stackfiles import read_raw_config
from tests.harness import ROOT


def settings_with(stack: str = "dev", **raw_keys: Any) -> StackSettings:
    raw: dict[str, Any] = read_raw_config(ROOT, stack)
    raw.update(raw_keys)
    return parse_settings(stack, raw)


def refused(stack: str = "dev", **raw_keys: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings_with(stack, **raw_keys)
    return caught.value


# --- settings -----------------------------------------------------------------


def test_no_pooler_and_no_replicas_by_default() -> None:
    for stack in ("dev", "prod"):
        settings = settings_with(stack)
        assert settings.pooler is None and settings.pooler_budget is None
        assert settings.replicas == ()


def test_a_container_pooler_takes_its_defaults() -> None:
    pooler = settings_with(pooler={"kind": "container"}).pooler
    assert pooler == ContainerPooler()
    assert (pooler.port, pooler.bind_address, pooler.pool_mode) == (
        6432,
        "127.0.0.1",
        "transaction",
    )
    assert pooler.image == "edoburu/pgbouncer:v1.25.1-p0"


@pytest.mark.parametrize(
    ("stack", "pooler", "key", "words"),
    [
        ("dev", {"kind": "pgpool"}, "naap-db:pooler.kind", "unknown pooler kind 'pgpool'"),
        ("dev", {}, "naap-db:pooler.kind", "unknown pooler kind None"),
        (
            "dev",
            {"kind": "rds"},
            "naap-db:pooler.kind",
            "an rds pooler needs naap-db:server.kind rds",
        ),
        (
            "prod",
            {"kind": "container"},
            "naap-db:pooler.kind",
            "needs naap-db:server.kind container",
        ),
        ("dev", {"kind": "external"}, "naap-db:pooler.host", "is required"),
        (
            "dev",
            {"kind": "container", "poolMode": "statement"},
            "naap-db:pooler.poolMode",
            "'statement'",
        ),
        (
            "dev",
            {"kind": "container", "image": "edoburu/pgbouncer:latest"},
            "naap-db:pooler.image",
            "no pinned tag",
        ),
        ("dev", {"kind": "container", "port": 0}, "naap-db:pooler.port", "outside 1-65535"),
        (
            "dev",
            {"kind": "container", "port": 5432},
            "naap-db:pooler.port",
            "the server's own port",
        ),
        (
            "dev",
            {"kind": "container", "port": "5432", "bindAddress": "0.0.0.0"},
            "naap-db:pooler.port",
            "the server's own port",
        ),
        (
            "dev",
            {"kind": "container", "bindAddress": "everywhere"},
            "naap-db:pooler.bindAddress",
            "not an IP",
        ),
        (
            "dev",
            {"kind": "container", "maxClientConnections": 10},
            "naap-db:pooler.maxClientConnections",
            "below the 65 server connections",
        ),
        (
            "dev",
            {"kind": "container", "sslmode": "require"},
            "naap-db:pooler.sslmode",
            "unknown key",
        ),
        (
            "dev",
            {"kind": "external", "host": "h", "sslmode": "sometimes"},
            "naap-db:pooler.sslmode",
            "'sometimes'",
        ),
        (
            "prod",
            {"kind": "rds", "idleClientTimeout": 0},
            "naap-db:pooler.idleClientTimeout",
            "1-28800",
        ),
        ("prod", {"kind": "rds", "poolMode": "session"}, "naap-db:pooler.poolMode", "unknown key"),
        ("dev", "yes", "naap-db:pooler", "must be a mapping"),
    ],
)
def test_a_bad_pooler_is_refused_naming_the_key(
    stack: str, pooler: Any, key: str, words: str
) -> None:
    error = refused(stack, pooler=pooler)
    assert error.key == key
    assert words in error.message


def test_a_production_container_pooler_stays_on_loopback() -> None:
    raw: dict[str, Any] = read_raw_config(ROOT, "dev")
    raw.update(production=True, pooler={"kind": "container", "bindAddress": "0.0.0.0"})
    with pytest.raises(ConfigError, match="publishes the pooler beyond this machine"):
        parse_settings("dev", raw)


@pytest.mark.parametrize(
    ("replicas", "key", "words"),
    [
        (16, "naap-db:replicas", "at most 15"),
        (-1, "naap-db:replicas", "negative"),
        ("two", "naap-db:replicas", "is not a whole number"),
        ([{"instanceClass": "m7g.large"}], "naap-db:replicas[0].instanceClass", "not an RDS"),
        ([{"availabilityZone": "east"}], "naap-db:replicas[0].availabilityZone", "e.g. us-east-1b"),
        ([{"zone": "us-east-1a"}], "naap-db:replicas[0].zone", "unknown key"),
        (["db.m7g.large"], "naap-db:replicas[0]", "must be a mapping"),
    ],
)
def test_bad_replicas_are_refused_naming_the_key(replicas: Any, key: str, words: str) -> None:
    error = refused("prod", replicas=replicas)
    assert (error.key, words in error.message) == (key, True), error


def test_replicas_need_an_rds_server() -> None:
    error = refused("dev", replicas=1)
    assert error.key == "naap-db:replicas" and "naap-db:server.kind rds" in error.message
    assert settings_with("dev", replicas=0).replicas == ()


def test_replicas_take_a_count_or_a_list() -> None:
    assert len(settings_with("prod", replicas="3").replicas) == 3
    (replica,) = settings_with("prod", replicas=[{"availabilityZone": "eu-west-3c"}]).replicas
    assert (replica.instance_class, replica.availability_zone) == (None, "eu-west-3c")


def test_read_from_is_primary_or_replica() -> None:
    raw: dict[str, Any] = read_raw_config(ROOT, "dev")
    raw["plugins"][1]["readFrom"] = "standby"
    with pytest.raises(ConfigError) as caught:
        parse_settings("dev", raw)
    assert caught.value.key == "naap-db:plugins[1].readFrom"


# --- pools and budget -------------------------------------------------------------


def test_every_application_login_is_pooled_and_the_push_goes_direct() -> None:
    for rotation in Rotation:
        plan = build_plan(settings_with().catalog, rotation)
        pooled = {pool.login for pool in pools(plan)}
        direct = {role.name for role in direct_logins(plan)}
        assert pooled | direct == {role.name for role in plan.login_roles}
        # the push: the migrator and each schema's push login
        push_logins = {s.migrator for s in plan.schemas if s.migrator}
        assert direct == set(plan.logins_of(names.MIGRATOR)) | push_logins
        for login in plan.logins_of(names.APP) + plan.logins_of(names.READONLY):
            assert login in pooled


def test_a_login_purpose_the_pooler_does_not_know_goes_direct() -> None:
    """An allowlist: a new kind of login (a per-schema push login, say) is
    never pooled unless someone says so."""
    from dataclasses import replace

    from naapdb.plan import AccessPlan, Role

    plan = build_plan(settings_with().catalog)
    newcomer = Role("plugin_wallet_migrator", login=True, purpose="schema-migrator")
    extended = AccessPlan(**{**plan.__dict__, "roles": (*plan.roles, newcomer)})  # type: ignore[arg-type]
    assert not is_pooled(extended, newcomer)
    assert newcomer in direct_logins(extended)
    assert "schema-migrator" not in POOLED_PURPOSES
    assert replace(newcomer, purpose="plugin").purpose in POOLED_PURPOSES


def test_a_pool_is_the_logins_connection_limit() -> None:
    raw: dict[str, Any] = read_raw_config(ROOT, "dev")
    raw["plugins"][2]["limits"] = {"connections": 9}  # wallet
    raw["pooler"] = {"kind": "container"}
    settings = parse_settings("dev", raw)
    by_login = {pool.login: pool.size for pool in pools(settings.plan)}
    assert by_login["naap_wallet"] == 9 and by_login[names.APP] == 20
    budget = settings.pooler_budget
    assert budget is not None
    assert budget.pooled == sum(by_login.values())
    # The server's side is the same sum as without a pooler: pools + direct + admin.
    assert budget.pooled + budget.direct + budget.server.admin == settings.budget.total


def test_both_sides_of_the_budget() -> None:
    budget = settings_with(pooler={"kind": "container", "maxClientConnections": 500}).pooler_budget
    assert budget is not None
    assert budget.describe() == [
        "pooler (container, transaction pooling): up to 500 client connections onto 65 server "
        "connections in 10 pools",
        "server: pools 65 + direct logins 10 + admin 20 = 95 of 197",
    ]
    prod = settings_with("prod", pooler={"kind": "rds"}).pooler_budget
    assert prod is not None and isinstance(prod.pooler, RdsPooler)
    assert prod.proxy_max_connections_percent == 60  # ceil(100 * 540 / 901)
    assert "max_connections_percent 60" in prod.describe()[0]


def test_a_catalogue_past_the_proxys_secrets_quota_is_refused() -> None:
    raw: dict[str, Any] = read_raw_config(ROOT, "prod")
    raw["plugins"] = [
        {"plugin": "base", "schema": "public"},
        *({"plugin": f"p{i}", "schema": f"plugin_p{i}"} for i in range(100)),
    ]
    raw["limits"] = {"plugins": {"connections": 1}, "maxConnections": 5000}
    raw["pooler"] = {"kind": "rds"}
    with pytest.raises(ConfigError, match="at most 200; this stack pools 206 logins"):
        parse_settings("prod", raw)


# --- PgBouncer's files -----------------------------------------------------------


def test_image_version_and_prepared_statements() -> None:
    assert pgbouncer.image_version("edoburu/pgbouncer:v1.25.1-p0") == (1, 25)
    assert pgbouncer.image_version("registry.local:5000/pgbouncer:1.18.0") == (1, 18)
    assert pgbouncer.image_version("pgbouncer:stable1") is None
    assert pgbouncer.supports_prepared_statements((1, 21))
    assert not pgbouncer.supports_prepared_statements((1, 18))
    assert not pgbouncer.supports_prepared_statements(None)


def test_the_config_renders_each_pool_and_no_password() -> None:
    pools_ = (Pool("naap_app", "naap_app", 20), Pool("naap_wallet", "naap_wallet", 5))
    text = pgbouncer.pgbouncer_ini(
        pools_,
        server_host="db",
        server_port=5432,
        listen_addr="0.0.0.0",
        listen_port=6432,
        pool_mode="transaction",
        max_client_connections=1000,
        prepared_statements=False,
        extra={"logfile": "/tmp/x.log"},
    )
    assert "naap = host=db port=5432 dbname=naap max_db_connections=25\n" in text
    assert "naap_app = max_user_connections=20\nnaap_wallet = max_user_connections=5\n" in text
    assert "default_pool_size = 20\n" in text and "max_client_conn = 1000\n" in text
    assert "max_prepared_statements" not in text
    assert text.endswith("logfile = /tmp/x.log\n")


def test_the_auth_file_holds_verifiers_of_the_pooled_logins_it_knows() -> None:
    pools_ = (Pool("naap_app", "naap_app", 20), Pool("naap_app_b", "naap_app", 20))
    text = pgbouncer.auth_file({"naap_app": "Secret123456", "naap_migrator": "M1234567"}, pools_)
    assert text == f'"naap_app" "{scram.verifier("Secret123456", "naap_app")}"\n'
    assert "Secret123456" not in text and "naap_migrator" not in text


# --- plan -----------------------------------------------------------------------


def project_with(tmp_path: Path, stack: str, extra: str) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    stack_file = tmp_path / f"Pulumi.{stack}.yaml"
    stack_file.write_text(stack_file.read_text() + extra)
    return tmp_path


def test_plan_shows_the_pools_and_both_sides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_with(tmp_path, "dev", "  naap-db:pooler:\n    kind: container\n")
    assert main(["plan", "--stack", "dev", "--project", str(project)]) == 0
    out = capsys.readouterr().out
    assert "pooler: PgBouncer container edoburu/pgbouncer:v1.25.1-p0 on 127.0.0.1:6432" in out
    assert "  naap_wallet                          5\n" in out
    assert "direct to the server (never pooled): naap_migrator" in out
    assert "connection budget, server: pools 65 + direct logins 10 + admin 20 = 95 of 197" in out
    assert main(["plan", "--stack", "dev", "--project", str(project), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pooler"]["server_connections"] == 65
    assert data["pooler"]["direct"] == ["naap_migrator"] + [
        f"{schema}_migrator" for schema in settings_with().catalog.schemas
    ]
    assert {"login": "naap_app", "identity": "naap_app", "size": 20} in data["pooler"]["pools"]


def test_plan_names_the_replica_readers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_with(tmp_path, "prod", "  naap-db:replicas: 2\n")
    assert main(["plan", "--stack", "prod", "--project", str(project), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["read_replicas"] == {"count": 2, "readers": ["naap_readonly_a"]}
    assert "pooler" not in data


def test_a_stack_without_either_prints_what_it_printed_before(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "--stack", "dev", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "pooler" not in data and "read_replicas" not in data


# --- dotenv ---------------------------------------------------------------------

DIRECT = "postgresql://naap_app:pw1@127.0.0.1:5432/naap?sslmode=disable"
POOLED = "postgresql://naap_app:pw1@127.0.0.1:6432/naap?sslmode=disable"
MIGRATOR = "postgresql://naap_migrator:pw2@127.0.0.1:5432/naap?sslmode=disable"
READ = "postgresql://naap_readonly_a:pw3@replica-1:5432/naap?sslmode=verify-full"
OUTPUTS = {
    "connection_urls": {"naap_app": POOLED, "naap_migrator": MIGRATOR, "naap_readonly_a": READ},
    "direct_urls": {"naap_app": DIRECT, "naap_migrator": MIGRATOR, "naap_readonly_a": READ},
    "pooler": {
        "kind": "container",
        "host": "127.0.0.1",
        "port": 6432,
        "pool_mode": "transaction",
        "notes": "transaction pooling (PgBouncer): ...; Prisma: no pgbouncer=true",
    },
    "read_urls": {"naap_readonly_a": READ.replace("replica-1", "replica-2")},
}


def dotenv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(OUTPUTS)))
    code = main(["dotenv", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_dotenv_says_where_a_pooled_url_goes_and_what_it_means(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dotenv(monkeypatch, capsys)
    note = (
        "DATABASE_URL goes through the container pooler at 127.0.0.1:6432: transaction "
        "pooling (PgBouncer): ...; Prisma: no pgbouncer=true"
    )
    assert (code, out) == (0, f"# {note}\nDATABASE_URL={POOLED}\n")
    assert err == f"note: {note}\n"


def test_dotenv_hands_the_migrator_its_direct_url_without_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = dotenv(monkeypatch, capsys, "--role", names.MIGRATOR)
    assert (code, out, err) == (0, f"DATABASE_URL={MIGRATOR}\n", "")


def test_dotenv_writes_the_read_url_of_a_reader(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dotenv(monkeypatch, capsys, "--role", names.READONLY)
    assert code == 0
    assert out == (
        f"DATABASE_URL={READ}\nDATABASE_READ_URL={READ.replace('replica-1', 'replica-2')}\n"
    )

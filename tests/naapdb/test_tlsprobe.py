"""The TLS probe (naapdb/tlsprobe.py) against real servers: the suite's
PostgreSQL, which has no TLS, one that serves TLS, and a closed port."""

from __future__ import annotations

from pathlib import Path

import pytest

from naapdb import tlsprobe
from tests.conftest import _OUR_PORTS
from tests.pgserver import PgServer, free_port
from tests.tlsca import make_ca
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = pytest.mark.db
TIMEOUT = 5.0


def test_a_server_without_tls_answers_no(pg: PgServer) -> None:
    assert tlsprobe.offers_tls(pg.host, pg.port, TIMEOUT) is False
    problem = tlsprobe.sslmode_problem(pg.host, pg.port, "require", "mine", TIMEOUT)
    assert problem == (
        f"'require' needs TLS, but the server at {pg.host}:{pg.port} does not offer it; on a "
        "private network set `pulumi config set --stack mine --path naap-db:server.sslmode "
        "disable`, or turn on ssl in the server's postgresql.conf"
    )
    assert tlsprobe.sslmode_problem(pg.host, pg.port, "disable", "mine", TIMEOUT) is None
    assert tlsprobe.sslmode_problem(pg.host, pg.port, "prefer", "mine", TIMEOUT) is None


def test_a_server_with_tls_answers_yes(tls_build: TlsBuild, tmp_path: Path) -> None:
    with tls_server(tls_build, make_ca(tmp_path / "ca", ("localhost",))) as server:
        assert tlsprobe.offers_tls(server.host, server.port, TIMEOUT) is True
        assert (
            tlsprobe.sslmode_problem(server.host, server.port, "verify-full", "s", TIMEOUT) is None
        )


def test_a_closed_port_is_left_to_the_provider() -> None:
    port = free_port()  # nothing listens: the suite's own, closed
    _OUR_PORTS.add(port)
    try:
        assert tlsprobe.offers_tls("127.0.0.1", port, TIMEOUT) is None
        assert tlsprobe.sslmode_problem("127.0.0.1", port, "require", "s", TIMEOUT) is None
    finally:
        _OUR_PORTS.discard(port)

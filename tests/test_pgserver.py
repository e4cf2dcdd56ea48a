"""The test servers really demand passwords over TCP."""

from __future__ import annotations

import psycopg
import pytest

from tests.pgserver import PgServer

pytestmark = pytest.mark.db


def test_password_is_required_over_tcp(pg: PgServer) -> None:
    with pg.connect() as connection:
        assert connection.execute("select current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg.connect(password="wrong")


def test_connections_to_other_servers_are_refused() -> None:
    with pytest.raises(AssertionError, match="did not start"):
        psycopg.connect("host=127.0.0.1 port=1 dbname=naap user=x")

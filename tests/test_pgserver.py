"""The test servers really demand passwords over TCP."""

from __future__ import annotations

import psycopg
import pytest

from tests.pgserver import INSTALLS, PgServer, selected_versions

pytestmark = pytest.mark.db


def test_password_is_required_over_tcp(pg: PgServer) -> None:
    with pg.connect() as connection:
        assert connection.execute("select current_user").fetchone() == ("postgres",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg.connect(password="wrong")


def test_connections_to_other_servers_are_refused() -> None:
    with pytest.raises(AssertionError, match="did not start"):
        psycopg.connect("host=127.0.0.1 port=1 dbname=naap user=x")


def test_the_versions_setting_picks_majors_in_its_order() -> None:
    assert selected_versions("") == ("16",)
    assert selected_versions("18") == ("18",)
    assert selected_versions(" 18, 16 ,18") == ("18", "16")
    with pytest.raises(ValueError, match=r"NAAPDB_TEST_POSTGRES='16,17': no PostgreSQL 17 here"):
        selected_versions("16,17")


def test_each_server_runs_the_major_of_its_factory(pg: PgServer) -> None:
    with pg.connect() as connection:
        number = connection.execute("SHOW server_version_num").fetchone()
    assert number is not None and int(number[0]) // 10000 == int(pg.version)
    assert pg.bin_dir == INSTALLS[pg.version].bin_dir

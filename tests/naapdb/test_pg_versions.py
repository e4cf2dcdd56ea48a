"""Where PostgreSQL 16 (the product's) and 18 differ under naap-db, each side
shown on a real server of each major, whatever NAAPDB_TEST_POSTGRES picks:
the MAINTAIN privilege (17+), the owner's built-in ACL (acldefault), the
error a grant on `pg_database_owner` raises; and what both share since 16
and the code must handle: one pg_auth_members row per grantor, the ADMIN-only
membership a CREATEROLE admin gets in each role it creates. `verify` prints
the same report on both."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest

from naapdb import verify
from tests.naapdb.test_verify import DEV_PLAN, apply_plan
from tests.pgserver import INSTALLS, ClusterFactory, PgServer

pytestmark = pytest.mark.db

VERSIONS = ("16", "18")

# Drift of every kind verify reports, made together; none names MAINTAIN,
# which 16 does not have (shown apart below).
DRIFT = """
GRANT SELECT, UPDATE ON plugin_wallet.items TO plugin_community_rw;
GRANT UPDATE (label) ON plugin_wallet.items TO naap_app;
GRANT SELECT ON public.items TO public_ro WITH GRANT OPTION;
GRANT EXECUTE ON FUNCTION plugin_wallet.item_count() TO PUBLIC;
GRANT CREATE ON DATABASE naap TO naap_app;
REVOKE DELETE ON plugin_developer_api.items FROM plugin_developer_api_rw;
ALTER DEFAULT PRIVILEGES FOR ROLE naap_owner IN SCHEMA plugin_community
    REVOKE SELECT ON TABLES FROM plugin_community_ro;
REVOKE public_ro FROM naap_wallet;
ALTER ROLE naap_gateway SUPERUSER;
GRANT plugin_wallet_rw TO naap_wallet WITH ADMIN OPTION;
GRANT plugin_wallet_rw TO naap_app WITH INHERIT FALSE;
GRANT pg_read_all_data TO naap_daydream;
CREATE SCHEMA scratch;
ALTER SCHEMA plugin_gateway OWNER TO naap_migrator;
CREATE TABLE plugin_wallet.stray (id serial PRIMARY KEY);
CREATE ROLE ops LOGIN PASSWORD 'ops-pw-7d1c';
GRANT naap_connect TO ops;
GRANT plugin_capacity_rw TO ops WITH ADMIN OPTION;
CREATE ROLE ops_admin LOGIN CREATEROLE PASSWORD 'ops-admin-pw-2b9e';
GRANT naap_connect TO ops_admin;
"""


@pytest.fixture
def dev_servers(
    pg_factories: Callable[[str], ClusterFactory],
) -> Iterator[dict[str, PgServer]]:
    """A server of each major with the dev plan and its objects applied."""
    servers = {version: pg_factories(version).start() for version in VERSIONS}
    for server in servers.values():
        apply_plan(server, DEV_PLAN)
    yield servers
    for version, server in servers.items():
        pg_factories(version).discard(server)


def report_of(server: PgServer) -> verify.Report:
    with psycopg.connect(server.conninfo(), autocommit=True) as connection:
        return verify.verify(connection, DEV_PLAN)


def test_each_selectable_version_is_the_major_it_claims() -> None:
    for version, install in INSTALLS.items():
        assert install.server_version().split(".")[0] == version


def test_verify_prints_the_same_report_on_16_and_18(dev_servers: dict[str, PgServer]) -> None:
    texts = {}
    for server in dev_servers.values():
        server.execute(DRIFT)
        # grants by admins who are not superusers: rows of their own (16+)
        ops = server.connect(user="ops", password="ops-pw-7d1c")
        ops.execute("GRANT plugin_capacity_rw TO naap_community")
        admin = server.connect(user="ops_admin", password="ops-admin-pw-2b9e")
        admin.execute("CREATE ROLE report_reader LOGIN")
        report = report_of(server)
        texts[server.version] = verify.report_to_text(report)
        for difference in report.differences:
            server.execute(difference.fix)
        assert not report_of(server).drift, server.version
    assert texts["16"] == texts["18"]
    lines = texts["16"].splitlines()
    assert len([line for line in lines if line.startswith("  ")]) >= 20
    assert (
        "  extra membership: naap_community is a member of plugin_capacity_rw (not in the "
        'plan); fix: REVOKE "plugin_capacity_rw" FROM "naap_community" GRANTED BY "ops";'
    ) in lines
    # the CREATEROLE admin's ADMIN-only membership in its role confers no right
    assert not any("report_reader" in line for line in lines)


def test_a_createrole_admin_gets_an_admin_only_membership_in_each_role_it_creates(
    dev_servers: dict[str, PgServer],
) -> None:
    rows = {}
    for server in dev_servers.values():
        server.execute("CREATE ROLE ops_admin LOGIN CREATEROLE PASSWORD 'pw-1'")
        server.execute("GRANT naap_connect TO ops_admin")
        admin = server.connect(user="ops_admin", password="pw-1")
        admin.execute("CREATE ROLE report_reader LOGIN")
        rows[server.version] = admin.execute(
            "SELECT admin_option, inherit_option, set_option, pg_get_userbyid(grantor) "
            "FROM pg_auth_members WHERE roleid = 'report_reader'::regrole"
        ).fetchall()
        membership = next(
            m for m in verify.read_live_state(admin).memberships if m.group == "report_reader"
        )
        assert (membership.admin, membership.confers_rights) == (True, False)
    assert rows["16"] == rows["18"] == [(True, False, False, "postgres")]


def test_maintain_exists_from_17_on(dev_servers: dict[str, PgServer]) -> None:
    """16 has no MAINTAIN: granting it is a syntax error, and the owner's
    built-in ACL lacks `m`. On 18 a hand GRANT of it (or of ALL, which
    includes it) is drift like any other privilege, and its fix works."""
    pg16, pg18 = dev_servers["16"], dev_servers["18"]
    owner_acl = "SELECT acldefault('r', 'naap_owner'::regrole)::text"
    with pg16.connect() as connection:
        assert connection.execute(owner_acl).fetchone() == ("{naap_owner=arwdDxt/naap_owner}",)
        with pytest.raises(psycopg.errors.SyntaxError, match='privilege type "maintain"'):
            connection.execute("GRANT MAINTAIN ON plugin_wallet.items TO naap_community")
    with pg18.connect() as connection:
        assert connection.execute(owner_acl).fetchone() == ("{naap_owner=arwdDxtm/naap_owner}",)
    pg18.execute("GRANT MAINTAIN ON plugin_wallet.items TO naap_community")
    assert verify.report_to_text(report_of(pg18)).splitlines()[1:] == [
        "  extra grant: naap_community has MAINTAIN on table plugin_wallet.items (not in the "
        'plan); fix: REVOKE MAINTAIN ON TABLE "plugin_wallet"."items" FROM "naap_community";'
    ]
    seven = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    for server, privileges in ((pg16, seven), (pg18, seven + ", MAINTAIN")):
        server.execute("GRANT ALL ON plugin_wallet.items TO naap_community")
        (difference,) = report_of(server).differences
        assert difference.message == (
            f"naap_community has {privileges} on table plugin_wallet.items (not in the plan)"
        )
        server.execute(difference.fix)
        assert not report_of(server).drift, server.version


def test_pg_database_owner_refuses_members_on_both_with_another_error_class(
    pg_factories: Callable[[str], ClusterFactory],
) -> None:
    errors = {"16": psycopg.errors.InternalError_, "18": psycopg.errors.FeatureNotSupported}
    for version, error in errors.items():
        server = pg_factories(version).start()
        server.execute("CREATE ROLE rds_admin LOGIN CREATEROLE")
        try:
            with pytest.raises(error, match="cannot have explicit members"):
                server.execute("GRANT pg_database_owner TO rds_admin")
        finally:
            server.stop()

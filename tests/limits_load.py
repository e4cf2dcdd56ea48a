"""One noisy plugin against its neighbours on a real server: the core of the
limits load test, shared with the benchmark (`bench/`, section `limits`).

The plan (with its limits) is applied to a real PostgreSQL, every login gets
a password, and then, at once:

- the quiet plugin's client threads connect, write and read their own
  schema, and disconnect, again and again (each session with a
  `lock_timeout`, so waiting on anybody's lock would be a failure);
- the schema push runs again and again as `naap_migrator`;
- the noisy plugin opens connections until the server refuses one, and
  keeps trying a few more times; then one of its sessions runs a query
  longer than its statement timeout, and another takes a row lock and
  sits idle in its transaction while `naap_app` waits for that row.

Every loop is bounded (a number of rounds, and a deadline), and every
connection goes to the loopback server the suite started. The report holds
counts and seconds; the test asserts on the counts and the errors only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from naapdb import names
from naapdb.catalog import Catalog
from naapdb.plan import AccessPlan
from naapdb.push import discover, push
from tests.pgserver import PgServer

NOISY_TABLE = "noise"
QUIET_TABLE = "chatter"
TOO_MANY = "too many connections for role"
# How long a quiet session may wait for a lock before its statement fails:
# far below the noisy plugin's timeouts, so a wait on the noisy plugin's
# locks would show as a failure.
QUIET_LOCK_TIMEOUT_MS = 200


@dataclass
class NeighbourReport:
    """What each side saw (never a password)."""

    limit: int
    attempts: int = 0
    opened: int = 0
    refused: int = 0
    refusals: set[str] = field(default_factory=set)
    other_noisy_errors: list[str] = field(default_factory=list)
    quiet_connections: int = 0
    quiet_failures: int = 0
    push_runs: int = 0
    push_failures: int = 0
    quiet_while_flooded: int = 0
    """Quiet connections made while the noisy plugin held all of its own."""
    push_while_flooded: int = 0
    errors: list[str] = field(default_factory=list)
    cancel_sqlstate: str | None = None
    cancel_message: str = ""
    cancel_seconds: float = 0.0
    idle_message: str = ""
    idle_session_closed: bool = False
    lock_waited_seconds: float = 0.0
    lock_acquired: bool = False
    elapsed: float = 0.0

    def summary(self) -> str:
        return (
            f"noisy: {self.opened} of {self.attempts} connections opened at limit {self.limit}, "
            f"{self.refused} refused; quiet: {self.quiet_connections} connections "
            f"({self.quiet_while_flooded} while it was at its limit), {self.quiet_failures} "
            f"failed; push: {self.push_runs} runs ({self.push_while_flooded} while at its limit), "
            f"{self.push_failures} failed; statement cancelled after "
            f"{self.cancel_seconds:.2f} s; idle transaction ended, lock released after "
            f"{self.lock_waited_seconds:.2f} s"
        )


def prepare(server: PgServer, plan: AccessPlan, plan_sql: str) -> dict[str, str]:
    """Apply the plan (its SQL) and give every login a password; returns the passwords."""
    import secrets

    server.execute(plan_sql)
    passwords = {role.name: secrets.token_urlsafe(18) for role in plan.login_roles}
    server.set_passwords(passwords)
    return passwords


def create_tables(server: PgServer, noisy_schema: str, quiet_schema: str) -> None:
    """One table in the noisy and one in the quiet schema, each created by
    its schema's owner so the default privileges give them their rights."""
    statements = [
        sql.SQL("SET ROLE {}").format(sql.Identifier(names.schema_owner(noisy_schema))),
        sql.SQL("CREATE TABLE {}.{} (id int PRIMARY KEY, n int NOT NULL)").format(
            sql.Identifier(noisy_schema), sql.Identifier(NOISY_TABLE)
        ),
        sql.SQL("INSERT INTO {}.{} VALUES (1, 0)").format(
            sql.Identifier(noisy_schema), sql.Identifier(NOISY_TABLE)
        ),
        sql.SQL("SET ROLE {}").format(sql.Identifier(names.schema_owner(quiet_schema))),
        sql.SQL("CREATE TABLE {}.{} (id serial PRIMARY KEY, note text)").format(
            sql.Identifier(quiet_schema), sql.Identifier(QUIET_TABLE)
        ),
    ]
    server.execute(";\n".join(statement.as_string(None) for statement in statements))


def run_neighbour_load(
    server: PgServer,
    plan: AccessPlan,
    passwords: Mapping[str, str],
    *,
    noisy: str,
    noisy_schema: str,
    quiet: str,
    quiet_schema: str,
    catalog: Catalog,
    migrations: Path,
    extra_attempts: int = 5,
    quiet_clients: int = 4,
    min_rounds: int = 5,
    max_rounds: int = 2_000,
    max_seconds: float = 120.0,
) -> NeighbourReport:
    """The scenario of the module docstring; `noisy` and `quiet` are
    login roles of `plan`. The quiet clients and the push each run at least
    `min_rounds`, and on until the noisy plugin is done (at most
    `max_rounds`, or `max_seconds` in all)."""
    limits = plan.role(noisy).limits
    assert limits is not None, f"{noisy} is not a login with limits"
    report = NeighbourReport(limit=limits.connections)
    lock = threading.Lock()
    started = time.monotonic()
    flooded = threading.Event()
    noisy_done = threading.Event()

    def go_on(round_: int) -> bool:
        if time.monotonic() - started > max_seconds or round_ >= max_rounds:
            return False
        return round_ < min_rounds or not noisy_done.is_set()

    def failed(counter: str, error: Exception) -> None:
        with lock:
            setattr(report, counter, getattr(report, counter) + 1)
            if len(report.errors) < 10:
                report.errors.append(f"{counter}: {type(error).__name__}: {error}")

    def quiet_loop(client: int) -> None:
        insert = sql.SQL("INSERT INTO {}.{} (note) VALUES (%s) RETURNING id").format(
            sql.Identifier(quiet_schema), sql.Identifier(QUIET_TABLE)
        )
        count = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(quiet_schema), sql.Identifier(QUIET_TABLE)
        )
        round_ = 0
        while go_on(round_):
            round_ += 1
            during = flooded.is_set()
            try:
                conninfo = server.conninfo(
                    user=quiet,
                    password=passwords[quiet],
                    options=f"-c lock_timeout={QUIET_LOCK_TIMEOUT_MS}",
                )
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(insert, (f"client {client} round {round_}",)).fetchone()
                    connection.execute(count).fetchone()
                with lock:
                    report.quiet_connections += 1
                    report.quiet_while_flooded += during and flooded.is_set()
            except Exception as error:  # every failure is counted
                failed("quiet_failures", error)

    migrator = plan.logins_of(names.MIGRATOR)[0]
    found = discover(migrations, catalog)

    def connect_schema(schema: str) -> psycopg.Connection[Any]:
        login = names.schema_migrator(schema)
        return psycopg.connect(
            server.conninfo(user=login, password=passwords[login]), autocommit=True
        )

    def push_loop() -> None:
        round_ = 0
        while go_on(round_):
            round_ += 1
            during = flooded.is_set()
            try:
                with psycopg.connect(
                    server.conninfo(user=migrator, password=passwords[migrator]), autocommit=True
                ) as connection:
                    push(connection, found, catalog, connect_schema=connect_schema)
                with lock:
                    report.push_runs += 1
                    report.push_while_flooded += during and flooded.is_set()
            except Exception as error:
                failed("push_failures", error)

    threads = [
        threading.Thread(target=quiet_loop, args=(client,), daemon=True)
        for client in range(quiet_clients)
    ]
    threads.append(threading.Thread(target=push_loop, daemon=True))
    for thread in threads:
        thread.start()
    held: list[psycopg.Connection[Any]] = []
    try:
        _flood(server, noisy, passwords[noisy], report, held, extra_attempts)
        flooded.set()
        if len(held) >= 2:
            _long_query(held[0], report)
            _idle_in_transaction(server, held[1], noisy_schema, plan, passwords, report)
        # The neighbours get a last moment with the noisy plugin at its limit.
        while time.monotonic() - started < max_seconds and (
            report.quiet_while_flooded < quiet_clients or report.push_while_flooded < 1
        ):
            time.sleep(0.05)
        flooded.clear()
    finally:
        noisy_done.set()
        for thread in threads:
            thread.join(timeout=max_seconds)
        for connection in held:
            connection.close()
        report.elapsed = time.monotonic() - started
    return report


def _flood(
    server: PgServer,
    login: str,
    password: str,
    report: NeighbourReport,
    held: list[psycopg.Connection[Any]],
    extra_attempts: int,
) -> None:
    """Open connections as `login` and keep them, up to its limit and
    `extra_attempts` beyond it."""
    for _ in range(report.limit + extra_attempts):
        report.attempts += 1
        try:
            held.append(
                psycopg.connect(server.conninfo(user=login, password=password), autocommit=True)
            )
            report.opened += 1
        except psycopg.OperationalError as error:
            message = str(error)
            if TOO_MANY in message:
                report.refused += 1
                report.refusals.add(message[message.index("FATAL") :].strip())
            else:
                report.other_noisy_errors.append(message)


def _long_query(connection: psycopg.Connection[Any], report: NeighbourReport) -> None:
    """A query far longer than the statement timeout: the server cancels it."""
    began = time.monotonic()
    try:
        connection.execute("SELECT pg_sleep(60)")
    except psycopg.Error as error:
        report.cancel_seconds = time.monotonic() - began
        report.cancel_sqlstate = error.sqlstate
        report.cancel_message = str(error)


def _idle_in_transaction(
    server: PgServer,
    connection: psycopg.Connection[Any],
    schema: str,
    plan: AccessPlan,
    passwords: Mapping[str, str],
    report: NeighbourReport,
) -> None:
    """The noisy session locks a row and goes idle in its transaction;
    `naap_app` (the shared pool, which writes every schema) updates the same
    row, with a lock timeout far beyond the idle timeout, and gets it once
    the server has ended the idle session."""
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(NOISY_TABLE))
    update = sql.SQL("UPDATE {} SET n = n + 1 WHERE id = 1").format(table)
    connection.execute("BEGIN")
    connection.execute(update)
    idle_since = time.monotonic()
    app = plan.logins_of(names.APP)[0]
    with psycopg.connect(
        server.conninfo(user=app, password=passwords[app], options="-c lock_timeout=30000"),
        autocommit=True,
    ) as waiter:
        waiter.execute(update)
        report.lock_waited_seconds = time.monotonic() - idle_since
        report.lock_acquired = True
    try:
        connection.execute("SELECT 1")
    except psycopg.Error as error:
        report.idle_message = str(error)
    report.idle_session_closed = connection.closed or connection.broken

"""What the pooler buys and what it costs, measured in one run against one
server of `max_connections` 100: how many client connections 50 plugins can
hold through PgBouncer (naap-db's rendered config, Debian's package) and
directly, and the latency the pooler adds per transaction.

    python bench/pooler.py [--plugins 50] [--clients-per-plugin 40]
        [--max-client-connections 1000] [--transactions 2000] [--json] [--write]

The catalogue is bench/run.py's synthetic one (`base` and the plugins) with
every plugin's pool at 1 server connection (51 x 1 + naap_app 10 +
naap_readonly 5 + naap_migrator 2 + admin 20 = 88 of the 97 the server keeps
for them), so the budget is the one `plan` checks, and the pooler is the
stack's `container` pooler with its default `maxClientConnections` (1000).
Direct, a plugin holds as many connections as its limit; through the pooler
each plugin tries `--clients-per-plugin` client connections, round-robin,
all held open at once until the pooler refuses, and every one held then
runs a transaction (queued behind its plugin's one server connection).
Latency: `--transactions` `SELECT 1` transactions on one held connection,
directly and through the pooler, median per transaction.
`--write` replaces the pooler section of bench/RESULTS.md (between its
markers).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import synthetic_catalogue  # noqa: E402
from bench.report import POOLER_BEGIN, POOLER_END, write_section  # noqa: E402
from naapdb import names  # noqa: E402
from naapdb.pooler import DEFAULT_MAX_CLIENT_CONNECTIONS, pools  # noqa: E402
from naapdb.settings import StackSettings, parse_settings  # noqa: E402
from naapdb.sql import plan_to_sql  # noqa: E402
from naapdb.stackfiles import read_raw_config  # noqa: E402
from tests.pgbouncer import installed_version, missing_reason, running_pgbouncer  # noqa: E402
from tests.pgserver import PgServer, _run_as, cluster_factory  # noqa: E402

BEGIN, END = POOLER_BEGIN, POOLER_END
MAX_CONNECTIONS = 100
LIMITS = {
    "plugins": {"connections": 1},
    "naap_app": {"connections": 10},
    "naap_readonly": {"connections": 5},
    "naap_migrator": {"connections": 2},
    "maxConnections": MAX_CONNECTIONS,
    "adminConnections": 20,
}


def bench_settings(plugins: int, max_client_connections: int) -> StackSettings:
    raw: dict[str, Any] = read_raw_config(ROOT, "dev")
    raw.update(
        plugins=synthetic_catalogue(plugins),
        limits=LIMITS,
        pooler={"kind": "container", "maxClientConnections": max_client_connections},
    )
    return parse_settings("dev", raw)


def restart_with_max_connections(server: PgServer, value: int) -> None:
    """The server's max_connections, as the budget says, then a restart."""
    server.execute(f"ALTER SYSTEM SET max_connections = {int(value)}", dbname="postgres")
    sockets = tempfile.mkdtemp(prefix="pgsock")
    subprocess.run(["chmod", "777", sockets], check=True)
    subprocess.run(
        [
            str(server.bin_dir / "pg_ctl"),
            "-D",
            str(server.data_dir),
            "-o",
            f"-h 127.0.0.1 -p {server.port} -k {sockets}",
            "-l",
            str(server.data_dir / "server.log"),
            "-w",
            "restart",
        ],
        check=True,
        capture_output=True,
        **_run_as(server.version),  # type: ignore[arg-type]
    )


def apply(server: PgServer, settings: StackSettings) -> dict[str, str]:
    """The plan, and each login's password as its verifier (as naap-db sets it)."""
    import secrets

    server.execute(plan_to_sql(settings.plan))
    passwords = {role.name: secrets.token_hex(16) for role in settings.plan.login_roles}
    server.set_verifiers(passwords)
    return passwords


def hold(conninfos: Sequence[str]) -> tuple[list[Any], int]:
    """Open every connection it can (round-robin order), keep them; and
    count the refusals."""
    import psycopg

    held, refused = [], 0
    for conninfo in conninfos:
        try:
            held.append(psycopg.connect(conninfo, autocommit=True))
        except psycopg.OperationalError:
            refused += 1
    return held, refused


def transact_all(held: Sequence[Any]) -> int:
    """Each held client runs one transaction; returns how many succeeded."""
    done = 0
    for connection in held:
        if connection.execute("SELECT 1").fetchone() == (1,):
            done += 1
    return done


def latency(conninfo: str, transactions: int) -> float:
    """Median seconds per `SELECT 1` transaction on one held connection."""

    samples = []
    with _connect_when_free(conninfo) as connection:
        for _ in range(100):  # warm up
            connection.execute("SELECT 1").fetchone()
        for _ in range(transactions):
            start = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            samples.append(time.perf_counter() - start)
    return float(statistics.median(samples))


def _connect_when_free(conninfo: str, patience: float = 10.0) -> Any:
    """A connection, once the pooler has counted the clients just closed
    (it sees their disconnects a moment later)."""
    import psycopg

    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def close(connections: Sequence[Any]) -> None:
    for connection in connections:
        connection.close()


def run(
    plugins: int, clients: int, transactions: int, max_client_connections: int
) -> dict[str, Any]:
    settings = bench_settings(plugins, max_client_connections)
    plugin_logins = [
        names.plugin_login(entry.plugin)
        for entry in settings.catalog.plugins
        if entry.plugin != "base"
    ][:plugins]
    with cluster_factory() as factory:
        server = factory.start()
        restart_with_max_connections(server, MAX_CONNECTIONS)
        passwords = apply(server, settings)
        with running_pgbouncer(
            server,
            pools(settings.plan),
            passwords,
            max_client_connections=max_client_connections,
        ) as bouncer:
            direct_infos = [
                server.conninfo(user=login, password=passwords[login])
                for _ in range(clients)
                for login in plugin_logins
            ]
            started = time.perf_counter()
            direct, direct_refused = hold(direct_infos)
            direct_seconds = time.perf_counter() - started
            direct_done = transact_all(direct)
            close(direct)
            login = plugin_logins[0]
            # Before the pooler holds this plugin's one server connection.
            direct_latency = latency(
                server.conninfo(user=login, password=passwords[login]), transactions
            )
            pooled_infos = [
                bouncer.conninfo(login, passwords[login])
                for _ in range(clients)
                for login in plugin_logins
            ]
            started = time.perf_counter()
            pooled, pooled_refused = hold(pooled_infos)
            pooled_seconds = time.perf_counter() - started
            started = time.perf_counter()
            pooled_done = transact_all(pooled)
            transact_seconds = time.perf_counter() - started
            with server.connect() as admin:
                row = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = ANY(%s)",
                    (plugin_logins,),
                ).fetchone()
            server_sessions = int(row[0]) if row else 0
            close(pooled)
            pooled_latency = latency(bouncer.conninfo(login, passwords[login]), transactions)
        server.stop()
    return {
        "plugins": plugins,
        "clients_per_plugin": clients,
        "max_client_connections": max_client_connections,
        "max_connections": MAX_CONNECTIONS,
        "budget": settings.budget.describe(),
        "pgbouncer": ".".join(str(part) for part in installed_version() or ()),
        "direct_held": len(direct),
        "direct_refused": direct_refused,
        "direct_transactions": direct_done,
        "direct_open_seconds": direct_seconds,
        "pooled_held": len(pooled),
        "pooled_refused": pooled_refused,
        "pooled_transactions": pooled_done,
        "pooled_open_seconds": pooled_seconds,
        "pooled_transact_seconds": transact_seconds,
        "server_sessions_while_pooled": server_sessions,
        "transactions": transactions,
        "direct_latency_us": direct_latency * 1e6,
        "pooled_latency_us": pooled_latency * 1e6,
    }


def section(figures: dict[str, Any], command: str) -> str:
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    f = figures
    ratio = f["pooled_held"] / f["direct_held"] if f["direct_held"] else float("inf")
    added = f["pooled_latency_us"] - f["direct_latency_us"]
    return "\n".join(
        [
            BEGIN,
            "## The pooler",
            "",
            f"Generated by `{command}` on {date}: PostgreSQL 16 (the `pgserver` wheel) with",
            f"`max_connections` {f['max_connections']}, PgBouncer {f['pgbouncer']} (Debian's "
            "package) with the config naap-db renders (transaction pooling), in front of it",
            f"on the same machine; {f['plugins']} synthetic plugins, each with a pool of 1 server",
            "connection",
            f"({f['budget']}).",
            "",
            "| path | client connections held at once | refused | of them ran a transaction "
            "| server sessions of the plugins |",
            "| --- | --- | --- | --- | --- |",
            f"| direct | {f['direct_held']} | {f['direct_refused']} | {f['direct_transactions']} "
            f"| {f['direct_held']} |",
            f"| through the pooler | {f['pooled_held']} | {f['pooled_refused']} "
            f"| {f['pooled_transactions']} | {f['server_sessions_while_pooled']} |",
            "",
            f"Client connections held at once: **{f['pooled_held']} through the pooler, "
            f"{ratio:.0f}x the {f['direct_held']} held directly** ({f['clients_per_plugin']} "
            f"per plugin were tried, {f['plugins'] * f['clients_per_plugin']} in all). What "
            f"stops the pooled path is the pooler's own `maxClientConnections` "
            f"({f['max_client_connections']}), not the server: every plugin still used its one "
            "server connection. Opening them took "
            f"{f['pooled_open_seconds']:.1f} s (SCRAM on every login); each held one then ran "
            f"a transaction in turn ({f['pooled_transact_seconds']:.2f} s for all).",
            "",
            "| per transaction (`SELECT 1`, one held connection, median of "
            f"{f['transactions']}) | µs |",
            "| --- | --- |",
            f"| direct | {f['direct_latency_us']:.0f} |",
            f"| through the pooler | {f['pooled_latency_us']:.0f} |",
            f"| added by the pooler | {added:.0f} "
            f"({f['pooled_latency_us'] / f['direct_latency_us']:.2f}x) |",
            END,
        ]
    )


def write(text: str) -> None:
    write_section(text, BEGIN, END)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/pooler.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--plugins", type=int, default=50, help="plugins (default 50)")
    parser.add_argument(
        "--clients-per-plugin", type=int, default=40, help="client connections each (default 40)"
    )
    parser.add_argument(
        "--max-client-connections",
        type=int,
        default=DEFAULT_MAX_CLIENT_CONNECTIONS,
        help=f"the pooler's maxClientConnections (default {DEFAULT_MAX_CLIENT_CONNECTIONS})",
    )
    parser.add_argument(
        "--transactions", type=int, default=2000, help="latency samples (default 2000)"
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    parser.add_argument(
        "--write", action="store_true", help="replace the pooler section of RESULTS.md"
    )
    args = parser.parse_args(argv)
    reason = missing_reason()
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    figures = run(
        args.plugins, args.clients_per_plugin, args.transactions, args.max_client_connections
    )
    if args.json:
        import json

        print(json.dumps(figures, indent=2))
        return 0
    text = section(figures, "python bench/pooler.py " + " ".join(argv or sys.argv[1:]))
    print(text)
    if args.write:
        write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Clients connecting continuously while a secret is rotated: the core of the
rotation load test, shared with the benchmark (`bench/`).

Each client thread re-reads the secret's AWSCURRENT version before every
connection, connects with it, runs `SELECT 1` and disconnects, the way a
pool that re-reads its secret behaves. The main thread rotates the secret
`rotations` times through `naapdb.rotate.rotate_now`. A failure is any
connection attempt that did not succeed.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from naapdb.connection import redact
from naapdb.rotate import CURRENT, DbSecret, rotate_now


@dataclass
class LoadReport:
    """What the clients saw during the rotations (never a password)."""

    clients: int
    connections: int = 0
    failures: int = 0
    rotation_seconds: list[float] = field(default_factory=list)
    logins_used: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    timed_out: bool = False

    @property
    def rotations(self) -> int:
        return len(self.rotation_seconds)

    def summary(self) -> str:
        mean = statistics.mean(self.rotation_seconds) if self.rotation_seconds else 0.0
        worst = max(self.rotation_seconds, default=0.0)
        return (
            f"{self.clients} clients, {self.rotations} rotations in {self.elapsed:.1f}s: "
            f"{self.connections} connections, {self.failures} failed; "
            f"{mean * 1000:.0f} ms per rotation (max {worst * 1000:.0f} ms)"
        )


class SerializedClient:
    """A boto3 client whose calls take turns: moto's in-memory backend is not
    thread-safe (the real Secrets Manager is); harmless against AWS."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def run_rotation_load(
    client: Any,
    secret_id: str,
    *,
    clients: int = 8,
    rotations: int = 10,
    pause: float = 0.2,
    max_seconds: float = 120.0,
    connect: Callable[..., Any] | None = None,
) -> LoadReport:
    """Rotate `secret_id` `rotations` times, `pause` seconds apart, while
    `clients` threads connect continuously with its current version; stop
    early after `max_seconds`."""
    shared = SerializedClient(client)
    connect = connect or psycopg.connect
    report = LoadReport(clients=clients)
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop() -> None:
        while not stop.is_set():
            try:
                value = shared.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)
                secret = DbSecret.parse(value["SecretString"], secret_id)
                with connect(secret.conninfo(), autocommit=True) as connection:
                    connection.execute("SELECT 1").fetchone()
                with lock:
                    report.connections += 1
                    report.logins_used.add(secret.username)
            except Exception as error:  # every failure is counted
                with lock:
                    report.failures += 1
                    if len(report.errors) < 5:
                        report.errors.append(redact(f"{type(error).__name__}: {error}", None))

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        for _ in range(rotations):
            if time.monotonic() - started > max_seconds:
                report.timed_out = True
                break
            time.sleep(pause)
            began = time.monotonic()
            rotate_now(shared, secret_id)
            report.rotation_seconds.append(time.monotonic() - began)
        time.sleep(pause)  # clients keep going on the last rotation's login
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        report.elapsed = time.monotonic() - started
    return report

"""No confused deputy in rotation: a secret a stranger could write steers no
credential anywhere.

Whoever may `PutSecretValue` on one identity secret controls everything in
it: host, port, dbname, masterarn. The rotation trusts only the master
secret and what the stack gave the Lambda (`naapdb.trust`), logs in with
the current login before using the master's, and requires SCRAM, so a
server asking for a password in clear gets none. The stranger's server here
is a socket server the test runs: it speaks the startup protocol, asks for
a cleartext password (AuthenticationCleartextPassword) and records every
byte it receives."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from naapdb import trust
from naapdb.rotate import (
    CURRENT,
    PASSWORD_LENGTH,
    PENDING,
    DbSecret,
    RotationError,
    rotate_now,
    run_step,
)
from tests.conftest import _OUR_PORTS
from tests.naapdb.test_rotate import (
    APP_SECRET,
    Deployment,
    aws,
    deployed,
    logs_in,
    rotation_ca,
)

pytestmark = [pytest.mark.db, pytest.mark.aws]
__all__ = ["aws", "deployed", "rotation_ca"]  # fixtures this module uses from test_rotate

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CLEARTEXT_PASSWORD = 3


@dataclass
class CleartextServer:
    """A server that asks every client for its password in clear."""

    port: int = 0
    received: list[bytes] = field(default_factory=list)
    connections: int = 0
    _socket: socket.socket | None = None

    def start(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.close()

    def _serve(self) -> None:
        assert self._socket is not None
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            with connection:
                connection.settimeout(5)
                with contextlib.suppress(OSError):
                    self._session(connection)

    def _session(self, connection: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _read(connection, 8))
            body = _read(connection, length - 8)
            self.received.append(struct.pack("!ii", length, code) + body)
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                connection.sendall(b"N")  # no TLS, no GSS: go on in clear
                continue
            break  # the StartupMessage
        connection.sendall(b"R" + struct.pack("!ii", 8, CLEARTEXT_PASSWORD))
        while chunk := connection.recv(4096):  # whatever the client answers
            self.received.append(chunk)

    @property
    def password_messages(self) -> list[bytes]:
        """PasswordMessages ('p') the server got after asking."""
        return [chunk for chunk in self.received[1:] if chunk[:1] == b"p"]


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


@pytest.fixture
def stranger() -> Iterator[CleartextServer]:
    """The stranger's server, started by the suite (so its guard lets the
    code under test reach it, as a real stranger's would be reached)."""
    server = CleartextServer()
    server.start()
    _OUR_PORTS.add(server.port)
    yield server
    _OUR_PORTS.discard(server.port)
    server.stop()


def tamper(deployed: Deployment, **changes: Any) -> DbSecret:
    """What a writer of the identity secret can do: a new AWSCURRENT version."""
    forged = replace(deployed.secret(APP_SECRET), **changes)
    deployed.client.put_secret_value(
        SecretId=APP_SECRET,
        ClientRequestToken=str(uuid.uuid4()),
        SecretString=forged.to_json(),
        VersionStages=[CURRENT],
    )
    return forged


def every_secret_byte(deployed: Deployment) -> set[bytes]:
    return {password.encode() for password in deployed.every_password()}


def test_a_tampered_port_gets_nothing_and_the_error_names_it(
    deployed: Deployment, stranger: CleartextServer
) -> None:
    tamper(deployed, port=stranger.port)
    with pytest.raises(RotationError) as caught:
        rotate_now(deployed.client, APP_SECRET)
    message = str(caught.value)
    assert "\n" not in message
    assert f"names port {stranger.port}" in message
    assert f"says {deployed.pg.port}" in message
    assert stranger.connections == 0 and stranger.received == []
    assert deployed.version_of(APP_SECRET, PENDING) is None
    assert deployed.stored_verifier("naap_app_b") is None  # nothing was changed


def test_a_tampered_host_or_database_is_refused_before_any_connection(
    deployed: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(trust.DATABASE_ENDPOINT_VARIABLE, f"localhost:{deployed.pg.port}/naap")
    original = deployed.secret(APP_SECRET)
    for changes, named in (({"host": "127.0.0.1"}, "names host '127.0.0.1'"),
                           ({"dbname": "postgres"}, "names dbname 'postgres'")):  # fmt: skip
        tamper(deployed, **{**{"host": original.host, "dbname": original.dbname}, **changes})
        with pytest.raises(RotationError, match=named):
            rotate_now(deployed.client, APP_SECRET)
    assert deployed.stored_verifier("naap_app_b") is None


def test_the_lambdas_endpoint_is_trusted_over_a_master_secret_without_one(
    deployed: Deployment, stranger: CleartextServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RDS's managed master secret holds only the login: the endpoint the
    stack gives the Lambda is then the reference."""
    master = json.loads(
        deployed.client.get_secret_value(SecretId=deployed.master_arn)["SecretString"]
    )
    deployed.client.put_secret_value(
        SecretId=deployed.master_arn,
        SecretString=json.dumps({"username": master["username"], "password": master["password"]}),
    )
    with pytest.raises(RotationError, match=trust.DATABASE_ENDPOINT_VARIABLE):
        rotate_now(deployed.client, APP_SECRET)  # no reference at all: refused
    monkeypatch.setenv(trust.DATABASE_ENDPOINT_VARIABLE, f"localhost:{stranger.port}/naap")
    with pytest.raises(RotationError, match=f"names port {deployed.pg.port}"):
        rotate_now(deployed.client, APP_SECRET)
    assert stranger.connections == 0
    monkeypatch.setenv(trust.DATABASE_ENDPOINT_VARIABLE, f"localhost:{deployed.pg.port}/naap")
    assert rotate_now(deployed.client, APP_SECRET).username == "naap_app_b"


def test_a_tampered_master_secret_arn_is_refused(
    deployed: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = deployed.client.create_secret(
        Name="someone-else", SecretString=json.dumps({"username": "u", "password": "p" * 20})
    )
    monkeypatch.setenv(trust.MASTER_ARN_VARIABLE, deployed.master_arn)
    tamper(deployed, masterarn=other["ARN"])
    with pytest.raises(RotationError, match=r"names the master secret .*refusing to read it"):
        rotate_now(deployed.client, APP_SECRET)


def test_a_server_without_tls_at_the_trusted_endpoint_receives_nothing(
    deployed: Deployment, stranger: CleartextServer
) -> None:
    """Even where the trusted endpoint itself answers with a server of
    someone else's (a hijacked address) that offers no TLS and asks for the
    password in clear, it gets no login and no password: every rotation
    connection is verify-full, so only the TLS request reaches it."""
    point_everything_at(deployed, stranger)
    with pytest.raises(RotationError) as caught:
        rotate_now(deployed.client, APP_SECRET)
    assert stranger.connections >= 1  # it was asked for TLS ...
    assert {struct.unpack("!ii", chunk[:8])[1] for chunk in stranger.received} == {SSL_REQUEST}
    sent = b"".join(stranger.received)
    assert not [secret for secret in every_secret_byte(deployed) if secret in sent]
    assert b"naap_app" not in sent  # ... and got not even the login's name
    assert "\n" not in str(caught.value)
    assert "SSL" in str(caught.value)


def test_a_secret_lowering_sslmode_stops_the_rotation_before_any_connection(
    deployed: Deployment, stranger: CleartextServer
) -> None:
    """Issue 21, gap 1: a writer of the identity secret sets `sslmode:
    disable` (where an attacker holds the trusted endpoint): the rotation
    stops with one line naming the field, and the server receives nothing."""
    point_everything_at(deployed, stranger)
    current = deployed.secret(APP_SECRET)
    raw = json.loads(current.to_json())
    for mode in ("disable", "prefer", "require"):
        deployed.client.put_secret_value(
            SecretId=APP_SECRET,
            ClientRequestToken=str(uuid.uuid4()),
            SecretString=json.dumps({**raw, "sslmode": mode}),
            VersionStages=[CURRENT],
        )
        with pytest.raises(RotationError) as caught:
            rotate_now(deployed.client, APP_SECRET)
        message = str(caught.value)
        assert "\n" not in message
        assert f"sslmode is '{mode}'" in message and "verify-full" in message
        assert stranger.connections == 0 and stranger.received == []
    assert deployed.version_of(APP_SECRET, PENDING) is None


def point_everything_at(deployed: Deployment, stranger: CleartextServer) -> None:
    """The trusted endpoint (the master secret's port) and the identity
    secret both name the stranger's server."""
    master = json.loads(
        deployed.client.get_secret_value(SecretId=deployed.master_arn)["SecretString"]
    )
    deployed.client.put_secret_value(
        SecretId=deployed.master_arn, SecretString=json.dumps({**master, "port": stranger.port})
    )
    tamper(deployed, port=stranger.port)


def test_the_master_login_is_used_only_after_the_current_login_works(
    deployed: Deployment,
) -> None:
    """A server that does not know the current login's verifier never sees
    the master login: here the current password no longer works."""
    deployed.pg.set_passwords({"naap_app_a": "changed-by-hand-0123456789"})
    with pytest.raises(RotationError, match="the current login naap_app_a cannot log in"):
        rotate_now(deployed.client, APP_SECRET)
    assert deployed.stored_verifier("naap_app_b") is None  # the master did nothing
    assert not logs_in(deployed.secret(APP_SECRET))


def test_a_secret_naming_another_identitys_login_is_refused(deployed: Deployment) -> None:
    """Issue 21, gap 2: a writer of naap_app's secret who knows naap_readonly's
    current password puts that login in naap_app's secret: the rotation must
    not give naap_readonly's idle login a password that writer would learn."""
    readonly = deployed.secret(deployed.secret_ids["naap_readonly"])
    tamper(deployed, username=readonly.username, password=readonly.password)
    with pytest.raises(RotationError) as caught:
        rotate_now(deployed.client, APP_SECRET)
    message = str(caught.value)
    assert "names the login naap_readonly_a, but the secret is naap_app's" in message
    assert "\n" not in message and readonly.password not in message
    assert deployed.stored_verifier("naap_readonly_b") is None
    assert deployed.version_of(APP_SECRET, PENDING) is None
    # The Lambda is called with the secret's ARN: the same check holds.
    arn = deployed.client.describe_secret(SecretId=APP_SECRET)["ARN"]
    with pytest.raises(RotationError, match="the secret is naap_app's"):
        rotate_now(deployed.client, arn)


def test_a_pending_password_shorter_than_a_generated_one_is_refused(
    deployed: Deployment,
) -> None:
    """Issue 21: a pending version put in by hand (the writer then knows the
    password the idle login would get) must be as long as a generated one."""
    token = str(uuid.uuid4())
    current = deployed.secret(APP_SECRET)
    short = replace(current, username="naap_app_b", password="k" * (PASSWORD_LENGTH - 1))
    deployed.client.put_secret_value(
        SecretId=APP_SECRET,
        ClientRequestToken=token,
        SecretString=short.to_json(),
        VersionStages=[PENDING],
    )
    with pytest.raises(RotationError) as caught:
        run_step(deployed.client, APP_SECRET, token, "setSecret")
    assert f"has {PASSWORD_LENGTH - 1} characters, fewer than the {PASSWORD_LENGTH}" in str(
        caught.value
    )
    assert short.password not in str(caught.value)
    assert deployed.stored_verifier("naap_app_b") is None
    long_enough = replace(short, password="k" * PASSWORD_LENGTH)
    token = str(uuid.uuid4())
    deployed.client.put_secret_value(
        SecretId=APP_SECRET,
        ClientRequestToken=token,
        SecretString=long_enough.to_json(),
        VersionStages=[PENDING],
    )
    run_step(deployed.client, APP_SECRET, token, "setSecret")
    assert logs_in(long_enough)

"""Whether a PostgreSQL server offers TLS, asked as libpq asks before it
logs in: the 8-byte SSLRequest, answered with one byte, `S` or `N`. No
login and no password are involved.

`pulumi up` asks an `external` server this before the admin provider first
connects. So an sslmode the server cannot meet fails in one line naming
`naap-db:server.sslmode`, before anything is created, instead of "pq: SSL
is not enabled on the server" on every resource, part-way through."""

from __future__ import annotations

import socket
import struct

# libpq's SSLRequest: length 8, then the code 1234 5679.
SSL_REQUEST = struct.pack("!II", 8, 80877103)
# The sslmodes under which libpq refuses a server that answers `N`.
TLS_REQUIRED = ("require", "verify-ca", "verify-full")


def offers_tls(host: str, port: int, timeout: float) -> bool | None:
    """True when the server answers `S`, False for `N`; None when it cannot
    be reached or answers something else (the provider then says why)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(SSL_REQUEST)
            answer = connection.recv(1)
    except OSError:
        return None
    return {b"S": True, b"N": False}.get(answer)


def sslmode_problem(host: str, port: int, sslmode: str, stack: str, timeout: float) -> str | None:
    """Why `sslmode` cannot work with the server at host:port, or None."""
    if sslmode not in TLS_REQUIRED or offers_tls(host, port, timeout) is not False:
        return None
    return (
        f"{sslmode!r} needs TLS, but the server at {host}:{port} does not offer it; on a private "
        f"network set `pulumi config set --stack {stack} --path naap-db:server.sslmode disable`, "
        "or turn on ssl in the server's postgresql.conf"
    )

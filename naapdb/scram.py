"""SCRAM-SHA-256 verifiers computed on the client (RFC 5802/7677, the format
PostgreSQL stores in `pg_authid.rolpassword`).

Every password naap-db hands to PostgreSQL goes as a verifier: the server
stores a `SCRAM-SHA-256$...` string as it is, so `ALTER ROLE ... PASSWORD
'<verifier>'` never carries the password itself, and a server logging every
statement (`log_statement`) logs only the verifier. pulumi-postgresql sends
a role's `password` in plain SQL, which is why the access layer hands it the
verifier and keeps the password in the secret outputs.

The verifier is deterministic for one password and role, so a preview or a
refresh sees no change: the salt is an HMAC of the role keyed by the
password. A guess can thus be checked against the salt with one HMAC
instead of the verifier's 4,096 PBKDF2 rounds; that costs nothing here,
because naap-db only hands PostgreSQL passwords it generated (at least 32
letters and digits, over 190 bits), which no guessing reaches, and it keeps
the program's cost at one PBKDF2 per login (`bench/`: the prod program's
time grows with the catalogue).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "SCRAM-SHA-256"
# PostgreSQL's default (scram_iterations); a login costs the server this many.
ITERATIONS = 4096
SALT_BYTES = 16
SALT_CONTEXT = b"naap-db scram salt\x00"


def is_verifier(value: str) -> bool:
    """Whether `value` is already a SCRAM-SHA-256 verifier (PostgreSQL's format)."""
    head, _, rest = value.partition("$")
    if head != PREFIX:
        return False
    params, _, keys = rest.partition("$")
    iterations, _, salt = params.partition(":")
    stored, _, server = keys.partition(":")
    return iterations.isdigit() and all(_is_base64(part) for part in (salt, stored, server))


def _is_base64(text: str) -> bool:
    try:
        return bool(text) and bool(base64.b64decode(text, validate=True))
    except ValueError:
        return False


def derived_salt(password: str, role: str) -> bytes:
    """The salt of `role`'s verifier: an HMAC of the role's name keyed by the
    password, so one password gives one verifier per role, and two roles
    (or two passwords) never share a salt."""
    return hmac.new(_normalize(password), SALT_CONTEXT + role.encode(), hashlib.sha256).digest()[
        :SALT_BYTES
    ]


def verifier(
    password: str, role: str, *, salt: bytes | None = None, iterations: int = ITERATIONS
) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for `password`.
    A password that already is a verifier is returned unchanged (PostgreSQL
    would store it as it is anyway)."""
    if is_verifier(password):
        return password
    salt = derived_salt(password, role) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _normalize(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"{PREFIX}${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _normalize(password: str) -> bytes:
    """The bytes PostgreSQL hashes. It applies SASLprep, which leaves printable
    ASCII unchanged (every password naap-db generates is letters and digits);
    a password SASLprep would change is refused rather than hashed into a
    verifier that never matches."""
    if not all(" " <= character <= "~" for character in password):
        raise ValueError(
            "only printable ASCII passwords are turned into SCRAM verifiers here "
            "(SASLprep would change this one)"
        )
    return password.encode("ascii")

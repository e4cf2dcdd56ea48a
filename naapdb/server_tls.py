"""How the ops commands (`verify`, `push`) reach the stack's server.

RDS: always `verify-full` against the trusted RDS CA bundle
(`naapdb.rds_ca`), whatever `DATABASE_URL` or an identity secret says. A
string that says `require` (or `disable`) would let anyone on the path pose
as the database and collect the login's password; the secret a stranger
could write must not be able to lower that. An `external` server keeps the
sslmode its stack (and so its connection strings) set; the dev container
has no TLS.
"""

from __future__ import annotations

import sys

from naapdb import rds_ca
from naapdb.connection import ConnectionError_, with_verify_full
from naapdb.settings import RdsServer, ServerSettings


def rds_root_certificate() -> str:
    """The bundle to verify RDS with, checked (`$NAAPDB_SSLROOTCERT` or the
    committed one); a refusal is a `ConnectionError_` naming the variable."""
    try:
        bundle = rds_ca.root_certificate()
    except rds_ca.UntrustedBundle as error:
        raise ConnectionError_(str(error)) from None
    if notice := bundle.notice(f"{rds_ca.TRUST_VARIABLE}=1"):
        print(f"warning: {notice}", file=sys.stderr)
    return str(bundle.path)


def connection_string(url: str, server: ServerSettings | None) -> str:
    """`url` as the stack's server must be reached: verify-full with the RDS
    CA bundle for rds, as given otherwise (or when the stack is unknown)."""
    if not isinstance(server, RdsServer):
        return url
    return with_verify_full(url, rds_root_certificate())

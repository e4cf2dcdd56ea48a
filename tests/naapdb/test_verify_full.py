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

from naapdb import rds_ca, trust
from naapdb.rotate import CURRENT, RotationError, rotate_now
from tests.naapdb.test_rotate import (
    APP_SECRET,
    TLS_HOST,
    Deployment,
    _build_script,
    aws,
    deploy,
    rotation_ca,
)
from tests.tlsca import CaFiles, make_ca
from tests.tlspostgres import TlsBuild
from tests.tlsserver import tls_server

pytestmark = [pytest.mark.db, pytest.mark.aws]
__all__ = ["aws", "rotation_ca"]  # fixtures this module uses from test_rotate

HOST = TLS_HOST  # the name in the server's certificate; 127.0.0.1 is not in it


@pytest.fixture
def tls_deployed(
    aws: Any, rotation_ca: tuple[TlsBuild, CaFiles]
) -> Iterator[tuple[Deployment, CaFiles]]:
    """A TLS server (certificate for `localhost` from a test CA) with the
    plan applied, its secrets on verify-full by host name, and the rotation
    trusting the test CA (as the Lambda trusts its bundled RDS CA)."""
    with tls_server(*rotation_ca) as server:
        yield deploy(server, aws), rotation_ca[1]


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


def test_an_unpinned_sslrootcert_without_the_trust_flag_is_refused(
    tls_deployed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA the rotation verifies with is the committed RDS bundle, or a
    `NAAPDB_SSLROOTCERT` that has the pinned digest or is trusted out loud."""
    deployed, _ = tls_deployed
    monkeypatch.delenv(rds_ca.TRUST_VARIABLE)
    with pytest.raises(RotationError) as caught:
        rotate_now(deployed.client, APP_SECRET)
    message = str(caught.value)
    assert "NAAPDB_SSLROOTCERT: " in message and "\n" not in message
    assert "is not the pinned RDS CA bundle" in message and "NAAPDB_TRUST_CA_BUNDLE=1" in message
    assert deployed.stored_verifier("naap_app_b") is None


# --- the Lambda build ships the committed bundle, or a checked one -----------------


def test_the_build_ships_the_committed_ca_bundle(tmp_path: Path, locked_wheels: Path) -> None:
    out = tmp_path / "out" / "rotation-lambda.zip"
    assert _build_script().main(["--wheels", str(locked_wheels), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as archive:
        shipped = archive.read("naapdb/rds-ca-bundle.pem")
    assert shipped == rds_ca.BUNDLE.read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == rds_ca.BUNDLE_SHA256


def test_another_ca_bundle_is_shipped_only_when_trusted(
    tmp_path: Path, locked_wheels: Path, capsys: Any
) -> None:
    ca = make_ca(tmp_path / "ca", (HOST,))
    out = tmp_path / "out.zip"
    arguments = ["--wheels", str(locked_wheels), "--out", str(out), "--ca-bundle", str(ca.ca_cert)]
    assert _build_script().main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and not out.exists()
    assert error.startswith(f"error: --ca-bundle: {ca.ca_cert} is not the pinned RDS CA bundle")
    assert "--trust-ca-bundle" in error
    assert _build_script().main([*arguments, "--trust-ca-bundle"]) == 0
    assert "is not the pinned RDS CA bundle" in capsys.readouterr().err  # said out loud
    with zipfile.ZipFile(out) as archive:
        assert archive.read("naapdb/rds-ca-bundle.pem") == ca.ca_cert.read_bytes()

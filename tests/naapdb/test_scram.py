"""SCRAM-SHA-256 verifiers computed by naap-db: the same bytes libpq
computes for the same salt, deterministic per password and role, and a
login with the password succeeds against a real server storing them."""

from __future__ import annotations

import base64

import psycopg
import pytest

from naapdb import scram
from tests.pgserver import PgServer


def test_the_verifier_is_deterministic_per_password_and_role() -> None:
    first = scram.verifier("Secret123", "naap_app")
    assert first == scram.verifier("Secret123", "naap_app")
    assert first != scram.verifier("Secret123", "naap_app_b")
    assert first != scram.verifier("Secret124", "naap_app")
    assert first.startswith("SCRAM-SHA-256$4096:")
    assert "Secret123" not in first
    assert scram.is_verifier(first)


def test_a_verifier_is_passed_through_and_plaintext_is_not_one() -> None:
    made = scram.verifier("abc", "r")
    assert scram.verifier(made, "other") == made
    assert not scram.is_verifier("abc")
    assert not scram.is_verifier("SCRAM-SHA-256$x:y$z:w")
    assert not scram.is_verifier("md5" + "0" * 32)


def test_a_password_saslprep_would_change_is_refused() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        scram.verifier("pässword", "r")


@pytest.mark.db
def test_libpq_computes_the_same_verifier_for_the_same_salt(pg: PgServer) -> None:
    with pg.connect() as connection:
        made = connection.pgconn.encrypt_password(b"Secret123", b"naap_app", b"scram-sha-256")
    text = made.decode()
    iterations, salt = text.split("$")[1].split(":")
    assert text == scram.verifier(
        "Secret123", "naap_app", salt=base64.b64decode(salt), iterations=int(iterations)
    )


@pytest.mark.db
def test_a_role_given_the_verifier_logs_in_with_the_password(pg: PgServer) -> None:
    pg.execute("DROP ROLE IF EXISTS scram_probe; CREATE ROLE scram_probe LOGIN")
    pg.execute(f"ALTER ROLE scram_probe PASSWORD '{scram.verifier('Probe42x', 'scram_probe')}'")
    with psycopg.connect(
        pg.conninfo(user="scram_probe", password="Probe42x", require_auth="scram-sha-256")
    ) as connection:
        assert connection.execute("SELECT current_user::text").fetchone() == ("scram_probe",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.conninfo(user="scram_probe", password="Probe42y"))
    pg.execute("DROP ROLE scram_probe")

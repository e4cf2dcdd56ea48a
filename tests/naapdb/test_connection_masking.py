"""Issue 21, gap 9: no connection string's password reaches any output.

Every command that reads `DATABASE_URL` is fed malformed strings, each
holding a known password (a space in it, a stray `%`, a string that is only
a password, an unterminated quote, a bad port or sslmode, a server that is
not there): each stops with one line, exit 2, and the password appears in
neither stdout nor stderr, not even in part."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.harness import ROOT

PASSWORD = "Sup3r S3cretWord"
# (the string, what it gets wrong); every one holds PASSWORD or its halves.
MALFORMED = [
    (f"host=127.0.0.1 user=naap_readonly password={PASSWORD}", "an unquoted space"),
    (PASSWORD.replace(" ", ""), "only a password"),
    ("postgresql://naap_readonly:Sup3r%zzS3cretWord@127.0.0.1:5432/naap", "bad percent-encoding"),
    (f"host=127.0.0.1 user=naap_readonly password='{PASSWORD}", "an unterminated quote"),
    (f"postgresql://naap_readonly:{PASSWORD}@127.0.0.1/naap", "a space in a URL"),
    ("postgresql://naap_readonly:Sup3rS3cretWord@127.0.0.1:notaport/naap", "a bad port"),
    ("host=127.0.0.1 user=u password=Sup3rS3cretWord sslmode=bogus", "a bad sslmode"),
    ("Sup3rS3cretWord=", "a password as a key"),
    ("postgresql://naap_readonly:Sup3rS3cretWord@127.0.0.1:9/naap?sslmode=disable", "no server"),
]
COMMANDS = [
    ("verify", "--stack", "dev"),
    ("verify", "--stack", "prod"),
    ("push", "--stack", "dev", "--dry-run"),
    ("push", "--stack", "prod"),
    ("push", "--dry-run"),
]
# What must not appear: the password, its halves, and its compact form.
FRAGMENTS = ("Sup3r", "S3cretWord", "Sup3rS3cretWord", "Sup3r%zzS3cret")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_no_malformed_connection_string_shows_its_password(command: tuple[str, ...]) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PG", "NAAPDB_", "DATABASE_URL"))
    }
    for url, problem in MALFORMED:
        done = subprocess.run(
            [sys.executable, "-m", "naapdb", *command],
            cwd=ROOT,
            env={**environment, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 2, f"{problem}: {output}"
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), problem
        assert "Traceback" not in output, problem
        leaked = [fragment for fragment in FRAGMENTS if fragment in output]
        assert leaked == [], f"{problem}: {output}"

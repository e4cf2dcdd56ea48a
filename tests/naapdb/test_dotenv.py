"""`python -m naapdb dotenv`: the DATABASE_URL line of one login role from
`pulumi stack output --json --show-secrets`, printed or written 0600."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from naapdb.__main__ import main

ROOT = Path(__file__).resolve().parents[2]

APP_URL = "postgresql://naap_app:Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kL9n@127.0.0.1:5432/naap?sslmode=disable"
READONLY_URL = "postgresql://naap_readonly:Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7z@127.0.0.1:5432/naap?sslmode=disable"
# What `pulumi stack output --json --show-secrets` prints for a dev stack.
DEV_OUTPUTS = {
    "connection_urls": {"naap_app": APP_URL, "naap_readonly": READONLY_URL},
    "database": "naap",
    "host": "127.0.0.1",
    "login_roles": ["naap_app", "naap_readonly"],
    "port": 5432,
    "schemas": ["public", "plugin_community"],
    "sslmode": "disable",
}
PASSWORDS = ("Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kL9n", "Zy9xW8vU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7z")


def run_dotenv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["dotenv", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_shared_pools_url_by_default(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    code, out, err = run_dotenv(monkeypatch, capsys, json.dumps(DEV_OUTPUTS))
    assert (code, out, err) == (0, f"DATABASE_URL={APP_URL}\n", "")


def test_prints_the_url_of_the_role_asked_for(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    code, out, _ = run_dotenv(
        monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--role", "naap_readonly"
    )
    assert (code, out) == (0, f"DATABASE_URL={READONLY_URL}\n")


def test_an_alternating_identity_uses_its_a_login_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    outputs = {"connection_urls": {"naap_app_a": APP_URL, "naap_app_b": READONLY_URL}}
    code, out, err = run_dotenv(monkeypatch, capsys, json.dumps(outputs))
    assert (code, out) == (0, f"DATABASE_URL={APP_URL}\n")
    assert "naap_app_a" in err and "Secrets Manager" in err
    assert not any(password in err for password in PASSWORDS)


def test_out_writes_the_line_readable_by_the_owner_only(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    target = tmp_path / ".env"
    old_umask = os.umask(0)  # the mode must not depend on the caller's umask
    try:
        code, out, err = run_dotenv(
            monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--out", str(target)
        )
    finally:
        os.umask(old_umask)
    assert (code, out, err) == (0, "", "")
    assert target.read_text() == f"DATABASE_URL={APP_URL}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_out_narrows_an_existing_file_before_writing(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    target = tmp_path / ".env"
    target.write_text("DATABASE_URL=postgresql://postgres:postgres@localhost/naap\nOTHER=1\n")
    target.chmod(0o644)
    events: list[str] = []
    real_open, real_fchmod, real_write = os.open, os.fchmod, os.write

    def spy_open(path: Any, flags: int, mode: int = 0o777) -> int:
        creat, nofollow = bool(flags & os.O_CREAT), bool(flags & os.O_NOFOLLOW)
        events.append(f"open mode={oct(mode)} creat={creat} nofollow={nofollow}")
        return real_open(path, flags, mode)

    def spy_fchmod(fd: int, mode: int) -> None:
        before = os.fstat(fd)
        was = f"{oct(stat.S_IMODE(before.st_mode))}, {before.st_size} bytes"
        events.append(f"fchmod {oct(mode)} (file was {was})")
        real_fchmod(fd, mode)

    def spy_write(fd: int, data: bytes) -> int:
        events.append(f"write while {oct(stat.S_IMODE(os.fstat(fd).st_mode))}")
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fchmod", spy_fchmod)
    monkeypatch.setattr(os, "write", spy_write)
    code, _, _ = run_dotenv(monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--out", str(target))
    monkeypatch.undo()
    assert code == 0
    # Read (never through a symlink), then truncated on open and narrowed
    # before the first byte of the secret lands.
    assert events[:4] == [
        "open mode=0o777 creat=False nofollow=True",
        "open mode=0o600 creat=True nofollow=True",
        "fchmod 0o600 (file was 0o644, 0 bytes)",
        "write while 0o600",
    ]
    assert target.read_text() == f"DATABASE_URL={APP_URL}\nOTHER=1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("A=1\nDATABASE_URL=old\nB=2\n", "A=1\nDATABASE_URL={url}\nB=2\n"),
        ("A=1\nexport DATABASE_URL=old\nB=2", "A=1\nDATABASE_URL={url}\nB=2\n"),
        ("A=1\nB=2", "A=1\nB=2\nDATABASE_URL={url}\n"),
        ("DATABASE_URL=a\nX=1\nDATABASE_URL=b\n", "DATABASE_URL={url}\nX=1\n"),
        (
            "# comment\nDATABASE_URL_RO=keep\n",
            "# comment\nDATABASE_URL_RO=keep\nDATABASE_URL={url}\n",
        ),
    ],
)
def test_out_replaces_only_the_url_line_of_an_existing_file(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path, existing: str, expected: str
) -> None:
    """Trap: `dotenv --out .env.verify` used to overwrite the whole file, the
    other variables a developer keeps in it included."""
    target = tmp_path / ".env"
    target.write_text(existing)
    code, out, err = run_dotenv(monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--out", str(target))
    assert (code, out, err) == (0, "", "")
    assert target.read_text() == expected.format(url=APP_URL)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_the_files_dotenv_writes_are_ignored_by_git() -> None:
    """docs/verify.md has you write `.env.verify`; .gitignore covers it and `.env`."""
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", ".env", ".env.verify", ".env.local"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == [".env", ".env.verify", ".env.local"]


def test_out_refuses_to_follow_a_symlink(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched\n")
    link = tmp_path / ".env"
    link.symlink_to(elsewhere)
    code, out, err = run_dotenv(monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--out", str(link))
    assert code == 2 and out == "" and err.startswith("error: cannot write")
    assert elsewhere.read_text() == "untouched\n"


@pytest.mark.parametrize(
    ("stdin", "args", "message"),
    [
        ("not json at all", (), "stdin is not JSON"),
        ("", (), "stdin is not JSON"),
        (json.dumps({"host": "127.0.0.1"}), (), "no connection_urls"),
        (json.dumps(["a list"]), (), "no connection_urls"),
        (json.dumps({"connection_urls": "[secret]"}), (), "add --show-secrets"),
        (json.dumps({"connection_urls": {"naap_app": 5}}), (), "not a map of login role"),
        (json.dumps(DEV_OUTPUTS), ("--role", "naap_wallet"), "no login role 'naap_wallet'"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_a_url(
    monkeypatch: pytest.MonkeyPatch, capsys: Any, stdin: str, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run_dotenv(monkeypatch, capsys, stdin, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "postgresql://naap" not in err
    assert not any(password in err for password in PASSWORDS)


def test_unknown_role_lists_the_known_ones(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _, _, err = run_dotenv(monkeypatch, capsys, json.dumps(DEV_OUTPUTS), "--role", "nobody")
    assert "known: naap_app, naap_readonly" in err

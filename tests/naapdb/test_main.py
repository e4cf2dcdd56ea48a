"""The command line's own face: what `--help` opens with, what a bare
`python -m naapdb` prints, that every option shows its default, and the
one-line answers to a missing region or project."""

from __future__ import annotations

from pathlib import Path

import pytest

from naapdb.__main__ import COMMANDS, main


def test_bare_invocation_lists_the_commands_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    for name in COMMANDS:
        assert f"\n    {name}" in err, name
    assert "ops tools" in err


def test_help_opens_with_what_the_tool_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert description.startswith("naap-db's ops tools for the NAAP platform's PostgreSQL")
    assert "dispatches" not in out and "bin/naapdb" in out


@pytest.mark.parametrize("command", ["plan", "verify"])
def test_format_shows_its_default(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "(default: text)" in " ".join(capsys.readouterr().out.split())


def test_a_project_without_pulumi_yaml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["plan", "--stack", "dev", "--project", str(tmp_path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path} holds no Pulumi.yaml" in err


def test_rotate_without_a_region_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    assert main(["rotate", "--secret-id", "naap-db/prod/naap_app"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "error: no AWS region: pass --region (e.g. --region us-east-1) or set AWS_REGION\n"
    )

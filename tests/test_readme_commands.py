"""The README followed as written, from a fresh clone: every command of its
`bash`/`sh` blocks that needs no Pulumi engine, Docker or AWS runs in a
clone of this checkout's HEAD (plus uncommitted changes to tracked files;
a file git does not track is missing there, as it would be for anyone),
and a non-zero exit fails unless the command's own comment announces it
(`# exit 2 ...`).

Skipped by rule, never by a list of lines: a command that runs `pulumi`,
`docker`, `aws` or `jq` (as any command word of it, pipelines and `$(...)`
included), or whose comment says `# needs: ...` (a network, a database,
AWS). The clone reuses this interpreter's venv (`venv` links to it) instead
of installing the requirements again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELL_LANGUAGES = ("bash", "sh", "shell")
NEEDS_TOOLS = frozenset({"pulumi", "docker", "aws", "jq"})
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>\S*)\s*$")
# A command word: at the start, or after a pipe, a list operator, `(` or `$(`.
COMMAND_WORD = re.compile(
    r"(?:^|[|;&(]|\$\()[ \t]*(?:[A-Z_]+=\S*\s+)*([^\s|;&()]+)", flags=re.MULTILINE
)
ANNOUNCED_EXIT = re.compile(r"\bexits? (\d+)\b")
# What the clone's commands must not inherit: a real database, stack or cloud.
PRIVATE_PREFIXES = ("DATABASE_URL", "NAAPDB_", "PULUMI_", "AWS_", "PG")


@dataclass(frozen=True)
class Command:
    """One command of the README as written: its code, its comment, its line."""

    code: str
    comment: str
    line: int

    @property
    def words(self) -> set[str]:
        return {Path(word).name for word in COMMAND_WORD.findall(self.code)}

    @property
    def skip_reason(self) -> str | None:
        tools = sorted(self.words & NEEDS_TOOLS)
        if tools:
            return f"README line {self.line} runs {', '.join(tools)}"
        if "needs:" in self.comment:
            return f"README line {self.line}: {self.comment.strip()}"
        return None

    @property
    def allowed_exits(self) -> set[int]:
        return {0, *(int(code) for code in ANNOUNCED_EXIT.findall(self.comment))}


def split_comment(line: str) -> tuple[str, str]:
    """`code  # comment` -> (code, comment); a `#` inside quotes or a word is code."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :]
    return line.rstrip(), ""


def shell_blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each shell block's first line number and its lines, dedented."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, start, body = len(match.group("indent")), index + 1, []
        index += 1
        while index < len(lines) and not FENCE.match(lines[index]):
            body.append(lines[index][indent:])
            index += 1
        index += 1
        if match.group("language") in SHELL_LANGUAGES:
            yield start + 1, body


def commands(text: str) -> list[Command]:
    """The README's commands: a `\\` continues a line, `for ... done` is one."""
    found: list[Command] = []
    for first_line, body in shell_blocks(text):
        code_parts: list[str] = []
        comments: list[str] = []
        start = first_line
        for offset, raw in enumerate(body):
            if not code_parts:
                start = first_line + offset
            code, comment = split_comment(raw)
            if not code.strip() and not code_parts:
                continue
            code_parts.append(code.rstrip("\\").rstrip())
            comments.append(comment)
            joined = "\n".join(code_parts)
            opened = re.match(r"\s*(for|while|until)\b", joined) and not re.search(
                r"^\s*done\b", code, flags=re.MULTILINE
            )
            if code.endswith("\\") or opened:
                continue
            loop = re.match(r"\s*(for|while|until)\b", joined)
            code_text = joined if loop else " ".join(part.strip() for part in code_parts)
            found.append(Command(code_text, " ".join(comments).strip(), start))
            code_parts, comments = [], []
    return found


README_COMMANDS = commands(README.read_text())


def fresh_clone(target: Path) -> Path:
    """A clone of this checkout's HEAD at `target`, plus the uncommitted
    changes to tracked files (a README being edited is tested as it
    stands); a file git does not track is missing there, as for anyone."""
    if shutil.which("git") is None:
        pytest.skip("no git on this machine: nothing to clone with")
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if found.returncode:
        pytest.skip("not a git checkout: nothing to clone")
    head = found.stdout.strip()
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "-q", head], check=True)
    changes = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "HEAD", "--binary"], capture_output=True, check=True
    ).stdout
    if changes:
        subprocess.run(["git", "-C", str(target), "apply"], input=changes, check=True)
    return target


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh clone of HEAD, with `venv` linked to this interpreter's."""
    target = fresh_clone(tmp_path_factory.mktemp("fresh") / "naap-db")
    link_venv(target / "venv")
    return target


def link_venv(venv: Path) -> None:
    """`venv` of the clone: this interpreter's venv, or a `bin/python` link
    to this interpreter when it runs outside one."""
    if sys.prefix != sys.base_prefix:
        venv.symlink_to(sys.prefix, target_is_directory=True)
    else:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to(sys.executable)


def clean_environment(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE_PREFIXES)}
    env["HOME"] = str(home)
    return env


def run(command: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=clean_environment(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", README_COMMANDS, ids=lambda command: f"line{command.line}")
def test_readme_command_runs_as_written(command: Command, clone: Path, tmp_path: Path) -> None:
    reason = command.skip_reason
    if reason:
        pytest.skip(reason)
    result = run(command.code, clone, tmp_path)
    assert result.returncode in command.allowed_exits, (
        f"README line {command.line}: `{command.code}` exited {result.returncode}, which "
        f"its comment does not announce\n{result.stdout}{result.stderr}"
    )
    if result.returncode:
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_the_readme_has_commands_to_run_and_commands_to_skip() -> None:
    """The rule must leave real work: the ops tools' commands run, the
    engine's are skipped."""
    runnable = [command for command in README_COMMANDS if not command.skip_reason]
    skipped = [command for command in README_COMMANDS if command.skip_reason]
    assert len(runnable) >= 4 and any("bin/naapdb plan" in c.code for c in runnable)
    assert any(command.words & {"pulumi"} for command in skipped)


def test_the_parser_of_commands_reads_what_bash_reads() -> None:
    text = (
        "```bash\n"
        'export X=""   # a comment, exit 3\n'
        "bin/naapdb plan \\\n  --stack dev\n"
        'for id in $(pulumi stack output x); do\n  echo "$id"\ndone\n'
        "echo '# not a comment' | tr a b\n"
        "```\n"
        "   ```sh\n   cd docs && ../bin/naapdb x   # needs: a database\n   ```\n"
        "```yaml\nnot: a command\n```\n"
    )
    found = commands(text)
    assert [command.code for command in found] == [
        'export X=""',
        "bin/naapdb plan --stack dev",
        'for id in $(pulumi stack output x); do\n  echo "$id"\ndone',
        "echo '# not a comment' | tr a b",
        "cd docs && ../bin/naapdb x",
    ]
    assert found[0].allowed_exits == {0, 3} and found[1].allowed_exits == {0}
    assert found[2].words == {"for", "pulumi", "do", "echo", "done"}
    assert found[2].skip_reason and found[4].skip_reason and not found[3].skip_reason
    assert found[4].words == {"cd", "naapdb"}


def test_from_another_directory_and_without_a_venv(clone: Path, tmp_path: Path) -> None:
    """`bin/naapdb` from anywhere reads the checkout it belongs to; a
    `--project` without Pulumi.yaml, or a checkout without `venv`, is one
    line and exit 2."""
    launcher = clone / "bin" / "naapdb"
    plan = run(f"{launcher} plan --stack dev --format json", tmp_path, tmp_path)
    assert plan.returncode == 0 and plan.stdout.startswith("{"), plan.stderr
    wrong = run(f"{launcher} plan --stack dev --project {tmp_path}", tmp_path, tmp_path)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert f"{tmp_path} holds no Pulumi.yaml" in wrong.stderr
    bare = run(str(launcher), tmp_path, tmp_path)
    assert bare.returncode == 2 and "commands:" in bare.stderr and "prisma-check" in bare.stderr
    second = tmp_path / "no-venv"
    subprocess.run(["git", "clone", "-q", str(clone), str(second)], check=True)
    missing = run(f"{second}/bin/naapdb plan --stack dev", tmp_path, tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert f"{second}/venv does not exist" in missing.stderr


DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md"))]
BARE_INTERPRETERS = frozenset({"python", "python3", "pip", "pip3"})


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_documented_commands_run_the_venv_not_a_bare_python(document: Path) -> None:
    """A bare `python` outside the venv lacks PyYAML and psycopg (`No module
    named 'yaml'`): every documented command runs `bin/naapdb` or
    `venv/bin/python`, except the one that creates a venv."""
    for command in commands(document.read_text()):
        bare = set(COMMAND_WORD.findall(command.code)) & BARE_INTERPRETERS  # as typed
        assert not bare or " -m venv " in f"{command.code} ", (
            f"{document.name} line {command.line}: `{command.code}` runs a bare "
            f"{', '.join(sorted(bare))}; use bin/naapdb or venv/bin/python"
        )

"""The `pulumi` commands recovery runs, as subprocesses of the CLI the user
has (naapdb never imports pulumi), in the project's directory and the
caller's environment (the backend, the passphrase or the KMS credentials).

Each runs with `PULUMI_SKIP_CHECKPOINTS=true`: it saves the state once, at
its end, and a recovery that is itself killed is simply run again. Their
output is kept and shown only when one fails; a locked stack is reported as
such, with what to do."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from naapdb.recover.errors import RecoverError

Runner = Callable[..., subprocess.CompletedProcess[str]]
SKIP_CHECKPOINTS_VARIABLE = "PULUMI_SKIP_CHECKPOINTS"
LOCKED = "the stack is currently locked"
# A `pulumi` command may run the whole program (the targeted up).
TIMEOUT = 3600
QUIET = ("--non-interactive", "--color", "never")


class PulumiCli:
    """`pulumi ... --stack STACK` in `project`."""

    def __init__(
        self,
        stack: str,
        project: Path,
        run: Runner = subprocess.run,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.project = project
        self._run = run
        self._environ = dict(os.environ if environ is None else environ)
        self._environ[SKIP_CHECKPOINTS_VARIABLE] = "true"

    def _pulumi(self, *arguments: str) -> str:
        command = ["pulumi", *arguments, "--stack", self.stack, *QUIET]
        try:
            result = self._run(
                command,
                cwd=self.project,
                env=self._environ,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            raise RecoverError(
                "pulumi: command not found; recover runs the Pulumi CLI that `pulumi up` uses"
            ) from None
        if result.returncode != 0:
            printed = f"{result.stdout}\n{result.stderr}"
            if LOCKED in printed:
                raise RecoverError(
                    f"stack {self.stack} is locked by a `pulumi` that did not finish or is still "
                    f"running ({_lock_lines(printed)}); if none runs on it now, run "
                    f"`bin/naapdb recover --stack {self.stack} --unlock`"
                )
            tail = "\n".join(printed.strip().splitlines()[-15:])
            raise RecoverError(f"`pulumi {arguments[0]}` exited {result.returncode}:\n{tail}")
        return result.stdout

    def export(self) -> str:
        """The stack's state, secrets in plaintext: for recovery's eyes only."""
        return self._pulumi("stack", "export", "--show-secrets")

    def cancel(self) -> None:
        """Remove the stack's lock (`pulumi cancel`): only when no update runs."""
        self._pulumi("cancel", "--yes")

    def import_resources(self, document: Mapping[str, Any]) -> None:
        """`pulumi import --file` of `document`, written to a private file
        removed afterwards (it holds names and ids, no secret)."""
        with tempfile.TemporaryDirectory(prefix="naapdb-recover-") as directory:
            path = Path(directory) / "import.json"
            path.write_text(json.dumps(document, indent=2))
            self._pulumi(
                "import",
                "--file",
                str(path),
                "--yes",
                "--skip-preview",
                "--protect=false",
                "--generate-code=false",
                "--suppress-outputs",
            )

    def up_targets(self, targets: Sequence[str]) -> None:
        """`pulumi up` of exactly `targets` (the program runs, nothing else changes)."""
        self._pulumi("up", "--yes", "--skip-preview", "--suppress-outputs", *_targets(targets))

    def refresh_targets(self, targets: Sequence[str]) -> None:
        """`pulumi refresh` of `targets`: each whose object is gone leaves the state."""
        self._pulumi("refresh", "--yes", "--skip-preview", "--suppress-outputs", *_targets(targets))


def _targets(urns: Sequence[str]) -> list[str]:
    return [argument for urn in urns for argument in ("--target", urn)]


def _lock_lines(printed: str) -> str:
    return "; ".join(line.strip() for line in printed.splitlines() if "created by" in line)

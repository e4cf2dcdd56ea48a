"""OpenTofu with cyrilgdn/terraform-provider-postgresql, as scripts/build-peer.sh
builds them: the same access layer (bench/hcl.py) in a local-backend working
directory, driven through the four operations bench/engine.py times."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.hcl import plan_to_hcl, provider_block
from naapdb import scram
from naapdb.plan import AccessPlan
from tests.pgserver import PgServer

BUILD_SCRIPT = "scripts/build-peer.sh"
OPERATION_TIMEOUT = 3600
# The admin's pool, as the Pulumi stack's provider has it (naapdb.limits).
ADMIN_CONNECTIONS = 20


def peer_dir() -> Path:
    return Path(os.environ.get("NAAPDB_PEER_DIR", "~/.cache/naap-db/peer")).expanduser()


def missing_peer_reason() -> str | None:
    """Why OpenTofu cannot run here, or None when it is built."""
    if (peer_dir() / "bin" / "tofu").is_file() and (peer_dir() / "tofurc").is_file():
        return None
    return f"OpenTofu is not built in {peer_dir()}: run `bash {BUILD_SCRIPT}` (needs Go)"


@dataclass
class Tofu:
    """A working directory with the access layer of a plan, its state in
    the local backend (terraform.tfstate), on `server`."""

    path: Path
    server: PgServer
    passwords: dict[str, str]

    @property
    def environment(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "TMPDIR")
        environment = {key: os.environ[key] for key in keep if key in os.environ}
        environment.update(
            TF_CLI_CONFIG_FILE=str(peer_dir() / "tofurc"),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )
        return environment

    def tofu(self, *arguments: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(peer_dir() / "bin" / "tofu"), *arguments, "-no-color"],
            cwd=self.path,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=OPERATION_TIMEOUT,
            check=False,
        )
        if result.returncode not in ok:
            raise RuntimeError(
                f"`tofu {' '.join(arguments)}` exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def configure(self, plan: AccessPlan) -> None:
        """(Re)writes the configuration for `plan`; a login new to this
        directory gets a password (a SCRAM verifier, as Pulumi's program sends)."""
        for role in plan.first_logins:
            if role.name not in self.passwords:
                self.passwords[role.name] = scram.verifier(secrets.token_urlsafe(24), role.name)
        server = self.server
        text = provider_block(
            server.host, server.port, plan.database, "postgres", ADMIN_CONNECTIONS
        )
        (self.path / "main.tf").write_text(text + "\n\n" + plan_to_hcl(plan, self.passwords))
        variables = self.path / "terraform.tfvars.json"
        variables.touch(mode=0o600)
        variables.write_text(
            json.dumps({"admin_password": server.password, "passwords": self.passwords})
        )

    def init(self) -> None:
        self.tofu("init", "-input=false")

    def apply(self) -> None:
        self.tofu("apply", "-auto-approve", "-input=false")

    def plan_no_changes(self, *extra: str) -> None:
        """`tofu plan -detailed-exitcode`: exit 0 is no change, 2 a change (an error here)."""
        self.tofu("plan", "-detailed-exitcode", "-input=false", *extra)

    def resources(self) -> int:
        return len(self.tofu("state", "list").stdout.split())


def make_tofu(destination: Path, server: PgServer, plan: AccessPlan) -> Tofu:
    destination.mkdir(parents=True)
    tofu = Tofu(destination, server, {})
    tofu.configure(plan)
    tofu.init()
    return tofu

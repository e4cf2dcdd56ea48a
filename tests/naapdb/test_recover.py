"""`naapdb recover` with the `pulumi` and `docker` CLIs replaced by fakes
that record what they are asked and answer as the real ones do (the real
engine runs it in tests/test_recover_engine.py), on a real PostgreSQL: the
import file for each kind it covers (roles, the dev server's container, the
pooler's network and container), the targeted up when the state has no
admin provider, placeholders for dropped roles, the lock, and nothing done
when nothing is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from naapdb import names, urns
from naapdb.__main__ import main
from naapdb.connection import connect
from naapdb.recover import Recovery, expected, importfile, live, lock, recover
from naapdb.recover.cli import PulumiCli
from naapdb.recover.errors import RecoverError
from naapdb.recover.state import SECRET_SIGNATURE, StackState
from naapdb.settings import StackSettings, parse_settings
from naapdb.stackfiles import read_raw_config
from tests.pgserver import SUPERUSER, PgServer

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "naap-db"
EXTERNAL = {
    "server": {"kind": "external", "host": "db.internal", "port": 5432},
    "adminPassword": {"secure": "v1:placeholder"},
}
DOCKER_VERSION = "4.11.2"


def settings_of(stack: str, **overrides: Any) -> StackSettings:
    raw = dict(read_raw_config(ROOT, stack))
    raw.update(overrides)
    return parse_settings(stack, raw)


def provider_resource(server: PgServer, stack: str = "dev") -> dict[str, Any]:
    """The admin provider as `pulumi stack export --show-secrets` prints it."""
    secret = {SECRET_SIGNATURE: "1b47061264138c4ac30d75fd1eb44270"}
    return {
        "urn": urns.admin_provider().urn(stack, PROJECT),
        "type": urns.ADMIN_PROVIDER_TYPE,
        "inputs": {
            "host": server.host,
            "port": str(server.port),
            "database": names.DATABASE,
            "username": SUPERUSER,
            "password": {**secret, "plaintext": json.dumps(server.password)},
            "sslmode": "disable",
            "superuser": "true",
            "connectTimeout": "15",
            "version": "3.18.2",
        },
    }


def resource(node: urns.Node, stack: str = "dev", **outputs: str) -> dict[str, Any]:
    return {"urn": node.urn(stack, PROJECT), "type": node.type, "outputs": outputs}


def export(*resources: dict[str, Any]) -> str:
    return json.dumps({"version": 3, "deployment": {"resources": list(resources)}})


class FakePulumi:
    """Stands for `PulumiCli`: each export answers the next of `exports`;
    every other call is recorded, with the import files' contents."""

    def __init__(self, *exports: str) -> None:
        self.exports = list(exports)
        self.calls: list[str] = []
        self.imports: list[dict[str, Any]] = []
        self.targets: list[list[str]] = []

    def export(self) -> str:
        self.calls.append("export")
        return self.exports.pop(0) if len(self.exports) > 1 else self.exports[0]

    def cancel(self) -> None:
        self.calls.append("cancel")

    def import_resources(self, document: Mapping[str, Any]) -> None:
        self.calls.append("import")
        self.imports.append(dict(document))

    def up_targets(self, targets: Sequence[str]) -> None:
        self.calls.append("up")
        self.targets.append(list(targets))

    def refresh_targets(self, targets: Sequence[str]) -> None:
        self.calls.append("refresh")
        self.targets.append(list(targets))


def docker(objects: Mapping[tuple[str, str], live.DockerObject]) -> Any:
    return lambda kind, name: objects.get((kind, name))


def recovery(
    settings: StackSettings,
    pulumi: FakePulumi,
    tmp_path: Path,
    objects: Mapping[tuple[str, str], live.DockerObject] | None = None,
) -> tuple[Recovery, list[str]]:
    printed: list[str] = []
    made = Recovery(
        stack=settings.stack,
        settings=settings,
        project=ROOT,
        cli=pulumi,  # type: ignore[arg-type]
        connect=connect,
        docker=docker(objects or {}),
        docker_version=DOCKER_VERSION,
        environ={"PULUMI_BACKEND_URL": (tmp_path / "state").as_uri()},
        out=printed.append,
    )
    return made, printed


def create_roles(server: PgServer, *role_names: str) -> None:
    for name in role_names:
        server.execute(f'CREATE ROLE "{name}" NOLOGIN')


def role_node(settings: StackSettings, name: str) -> urns.Node:
    return urns.role(settings.plan.role(name))


# --- the flow -----------------------------------------------------------------------------


def test_nothing_missing_only_reads(fresh_pg: PgServer, tmp_path: Path) -> None:
    settings = settings_of("dev", **EXTERNAL)
    create_roles(fresh_pg, "naap_app")
    state = export(provider_resource(fresh_pg), resource(role_node(settings, "naap_app")))
    pulumi = FakePulumi(state)
    made, printed = recovery(settings, pulumi, tmp_path)
    assert recover(made) is False
    assert pulumi.calls == ["export"]
    assert printed == ["nothing to recover: the state knows every object of the stack that exists"]


def test_roles_the_state_lacks_are_imported_under_their_components(
    fresh_pg: PgServer, tmp_path: Path
) -> None:
    settings = settings_of("dev", **EXTERNAL)
    create_roles(fresh_pg, "naap_owner", "public_rw", "naap_app")
    top = [resource(urns.database()), resource(urns.access())]
    pulumi = FakePulumi(export(provider_resource(fresh_pg), *top))
    made, printed = recovery(settings, pulumi, tmp_path)
    assert recover(made) is True
    assert pulumi.calls == ["export", "import"]
    (document,) = pulumi.imports
    provider = urns.admin_provider()
    assert document["nameTable"] == {
        "naap-access": urns.access().urn("dev", PROJECT),
        provider.name: provider.urn("dev", PROJECT),
    }
    assert document["resources"] == [
        {
            "type": urns.SCHEMA_ACCESS_TYPE,
            "name": "naap-access-public",
            "component": True,
            "parent": "naap-access",
        },
        *(
            {
                "type": urns.ROLE_TYPE,
                "name": role_node(settings, name).name,
                "id": name,
                "parent": role_node(settings, name).parent.name,  # type: ignore[union-attr]
                "provider": provider.name,
            }
            for name in [r.name for r in settings.plan.roles]
            if name in ("naap_owner", "public_rw", "naap_app")
        ),
    ]
    assert "import: postgresql:index/role:Role naap-access-role-naap_app (role naap_app)" in printed


def test_dropped_roles_come_back_as_placeholders_and_gone_planned_ones_leave_the_state(
    fresh_pg: PgServer, tmp_path: Path
) -> None:
    """A removed plugin's roles, dropped by the killed update, are still in
    the state with a grant naming one: each comes back empty and NOLOGIN so
    `pulumi up` can drop it. A planned role gone from the server: what names
    it is refreshed out of the state, for `pulumi up` to create again."""
    settings = settings_of("dev", **EXTERNAL)
    gone_group = urns.Node(urns.ROLE_TYPE, "naap-access-plugin_old-role-plugin_old_rw")
    grant = urns.Node(urns.GRANT_TYPE, "naap-access-plugin_old-grant-plugin_old_rw-schema")
    app = role_node(settings, "naap_app")
    state = export(
        provider_resource(fresh_pg),
        resource(gone_group, name="plugin_old_rw"),
        resource(grant, role="plugin_old_rw"),
        resource(app, name="naap_app"),
    )
    pulumi = FakePulumi(state)
    made, printed = recovery(settings, pulumi, tmp_path)
    assert recover(made) is True
    assert pulumi.calls == ["export", "refresh"]
    assert pulumi.targets == [[app.urn("dev", PROJECT)]]
    with fresh_pg.connect() as admin:
        row = admin.execute(
            "SELECT rolcanlogin, (SELECT count(*) FROM pg_shdepend d WHERE d.refobjid = r.oid) "
            "FROM pg_roles r WHERE rolname = 'plugin_old_rw'"
        ).fetchone()
    assert row == (False, 0)
    assert printed[0].startswith("placeholders: 1 roles a killed update dropped")


def test_a_dev_stack_killed_on_its_first_up(fresh_pg: PgServer, tmp_path: Path) -> None:
    """No state at all: the container (this stack's, by its labels) is
    imported first, a targeted up creates the admin provider and the server
    chain, then the roles that exist are imported."""
    settings = settings_of("dev")
    container = expected.docker_objects(settings)[0]
    objects = {("container", "naap-db-dev"): live.DockerObject("c0ffee", names.stack_labels("dev"))}
    create_roles(fresh_pg, "naap_owner")
    pulumi = FakePulumi(export(), export(provider_resource(fresh_pg)))
    made, printed = recovery(settings, pulumi, tmp_path, objects)
    assert recover(made) is True
    assert pulumi.calls == ["export", "import", "up", "export", "import"]
    first, second = pulumi.imports
    assert first == {
        "nameTable": {},
        "resources": [
            {"type": urns.DATABASE_TYPE, "name": "naap", "component": True},
            {
                "type": urns.SERVER_TYPE,
                "name": "naap-server",
                "component": True,
                "parent": "naap",
            },
            {
                "type": urns.CONTAINER_TYPE,
                "name": container.node.name,
                "id": "c0ffee",
                "parent": "naap-server",
                "version": DOCKER_VERSION,
            },
        ],
    }
    assert pulumi.targets == [
        [node.urn("dev", PROJECT) for node in urns.container_server_chain(with_network=False)]
    ]
    assert [r["id"] for r in second["resources"] if "id" in r] == ["naap_owner"]
    assert any("targeted `pulumi up`" in line for line in printed)


def test_the_pooler_network_and_container_are_imported(fresh_pg: PgServer, tmp_path: Path) -> None:
    settings = settings_of("dev", pooler={"kind": "container"})
    labels = names.stack_labels("dev")
    objects = {
        ("network", "naap-db-dev-net"): live.DockerObject("n1", labels),
        ("container", "naap-db-dev-pooler"): live.DockerObject("p1", labels),
    }
    server = [
        resource(urns.database()),
        resource(urns.server()),
        resource(urns.server_child(urns.CONTAINER_TYPE, urns.SERVER_CONTAINER)),
    ]
    pulumi = FakePulumi(export(provider_resource(fresh_pg), *server))
    made, _ = recovery(settings, pulumi, tmp_path, objects)
    assert recover(made) is True
    (document,) = pulumi.imports
    adopted = {r["name"]: r for r in document["resources"]}
    assert adopted["naap-server-network"]["id"] == "n1"
    assert adopted["naap-server-network"]["type"] == urns.NETWORK_TYPE
    assert adopted["naap-pooler-container"] == {
        "type": urns.CONTAINER_TYPE,
        "name": "naap-pooler-container",
        "id": "p1",
        "parent": "naap-pooler",
        "version": DOCKER_VERSION,
    }
    assert adopted["naap-pooler"]["component"] is True
    assert document["nameTable"]["naap-server"] == urns.server().urn("dev", PROJECT)


def test_a_container_of_another_stack_is_refused(tmp_path: Path) -> None:
    settings = settings_of("dev")
    objects = {("container", "naap-db-dev"): live.DockerObject("c0ffee", {"com.example": "theirs"})}
    pulumi = FakePulumi(export())
    made, _ = recovery(settings, pulumi, tmp_path, objects)
    with pytest.raises(RecoverError, match="exists but is not stack dev's"):
        recover(made)
    assert pulumi.calls == ["export"]


def test_no_container_no_provider_is_nothing_to_recover(tmp_path: Path) -> None:
    pulumi = FakePulumi(export())
    made, printed = recovery(settings_of("dev"), pulumi, tmp_path)
    assert recover(made) is False
    assert pulumi.calls == ["export"]
    assert "no server container exists" in printed[0]


def test_prod_without_its_provider_recovers_nothing(tmp_path: Path) -> None:
    pulumi = FakePulumi(export())
    made, printed = recovery(settings_of("prod"), pulumi, tmp_path)
    assert recover(made) is False
    assert "keeps checkpoints" in printed[0]


def test_unlock_first_and_a_dry_run_changes_nothing(fresh_pg: PgServer, tmp_path: Path) -> None:
    settings = settings_of("dev", **EXTERNAL)
    create_roles(fresh_pg, "naap_app")
    pulumi = FakePulumi(export(provider_resource(fresh_pg)))
    made, printed = recovery(settings, pulumi, tmp_path)
    assert recover(made, unlock=True, dry_run=True) is True
    assert pulumi.calls == ["export"]
    assert printed[0].startswith("unlock: `pulumi cancel`")
    assert recover(made, unlock=True) is True
    assert pulumi.calls[-3:] == ["cancel", "export", "import"]


# --- the lock -------------------------------------------------------------------------------


def write_lock(root: Path, stack: str, pid: int, hostname: str) -> Path:
    directory = root / ".pulumi" / "locks" / "organization" / PROJECT / stack
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{pid}.json"
    content = {"pid": pid, "username": "ci", "hostname": hostname, "timestamp": "now"}
    path.write_text(json.dumps(content))
    return path


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_lock_of_a_dead_process_of_this_machine_is_stale(tmp_path: Path) -> None:
    write_lock(tmp_path, "dev", dead_pid(), socket.gethostname())
    (found,) = lock.file_locks(tmp_path.as_uri(), PROJECT, "dev") or []
    assert found.stale


@pytest.mark.parametrize("alive, host", [(True, "here"), (False, "another-machine")])
def test_a_live_or_foreign_lock_stops_recovery(tmp_path: Path, alive: bool, host: str) -> None:
    hostname = socket.gethostname() if host == "here" else host
    write_lock(tmp_path / "state", "dev", os.getpid() if alive else dead_pid(), hostname)
    pulumi = FakePulumi(export())
    made, _ = recovery(settings_of("dev"), pulumi, tmp_path)
    with pytest.raises(RecoverError, match="--unlock"):
        recover(made)
    assert pulumi.calls == []


def test_a_stale_lock_is_removed_without_asking(tmp_path: Path) -> None:
    write_lock(tmp_path / "state", "dev", dead_pid(), socket.gethostname())
    pulumi = FakePulumi(export())
    made, printed = recovery(settings_of("dev"), pulumi, tmp_path)
    assert recover(made) is True
    assert pulumi.calls == ["cancel", "export"]
    assert "is stale (that process is gone)" in printed[0]


def test_only_file_backends_are_read() -> None:
    assert lock.file_locks("s3://bucket", PROJECT, "dev") is None
    assert lock.backend_url(ROOT, {}) == "file://~"
    assert lock.backend_url(ROOT, {"PULUMI_BACKEND_URL": "s3://b"}) == "s3://b"


# --- the state, Docker, the CLI ------------------------------------------------------------


def test_the_state_gives_the_admin_connection_and_never_a_ciphertext(fresh_pg: PgServer) -> None:
    state = StackState.from_export(export(provider_resource(fresh_pg)))
    conninfo = state.admin_conninfo(urns.admin_provider().urn("dev", PROJECT))
    with connect(conninfo) as connection:
        assert connection.execute("SELECT current_user").fetchone() == (SUPERUSER,)
    encrypted = provider_resource(fresh_pg)
    encrypted["inputs"]["password"] = {SECRET_SIGNATURE: "x", "ciphertext": "v1:abc"}
    with pytest.raises(RecoverError, match="--show-secrets"):
        StackState.from_export(export(encrypted)).admin_conninfo(encrypted["urn"])
    with pytest.raises(RecoverError, match="no JSON"):
        StackState.from_export("error: no stack named dev")


def completed(returncode: int, stdout: str = "", stderr: str = "") -> Any:
    return subprocess.CompletedProcess([], returncode, stdout, stderr)


def test_docker_objects_are_read_with_their_labels() -> None:
    container = json.dumps([{"Id": "abc", "Config": {"Labels": {"a": "b"}}}])
    network = json.dumps([{"Id": "net", "Labels": None}])
    asked: list[list[str]] = []

    def run(command: list[str], **_: Any) -> Any:
        asked.append(command)
        kind, name = command[3], command[4]
        if name == "missing":
            return completed(1, stderr=f"Error: No such {kind}: missing")
        return completed(0, container if kind == "container" else network)

    assert live.docker_object("container", "c", run) == live.DockerObject("abc", {"a": "b"})
    assert live.docker_object("network", "n", run) == live.DockerObject("net", {})
    assert live.docker_object("container", "missing", run) is None
    assert asked[0] == ["docker", "inspect", "--type", "container", "c"]

    def broken(command: list[str], **_: Any) -> Any:
        return completed(1, stderr="Cannot connect to the Docker daemon")

    with pytest.raises(RecoverError, match="Cannot connect to the Docker daemon"):
        live.docker_object("container", "c", broken)

    def absent(command: list[str], **_: Any) -> Any:
        raise FileNotFoundError(command[0])

    with pytest.raises(RecoverError, match="docker: command not found"):
        live.docker_object("container", "c", absent)


def test_the_cli_runs_each_command_on_the_stack_saving_once(tmp_path: Path) -> None:
    seen: list[tuple[list[str], dict[str, str], str]] = []

    def run(command: list[str], **options: Any) -> Any:
        text = Path(command[3]).read_text() if command[1] == "import" else ""
        seen.append((command, options["env"], text))
        return completed(0, "{}")

    cli = PulumiCli("dev", tmp_path, run, environ={"PATH": "/bin"})
    cli.import_resources({"resources": []})
    cli.up_targets(["urn:a"])
    (command, environment, text), (up, _, _) = seen
    assert command[:2] == ["pulumi", "import"] and "--protect=false" in command
    assert command[command.index("--stack") + 1] == "dev"
    assert environment["PULUMI_SKIP_CHECKPOINTS"] == "true"
    assert json.loads(text) == {"resources": []}
    assert not Path(command[3]).exists()
    assert up[up.index("--target") + 1] == "urn:a"


def test_a_locked_stack_says_what_to_do(tmp_path: Path) -> None:
    printed = (
        "error: the stack is currently locked by 1 lock(s). Either wait ...\n"
        "  file:///x/.pulumi/locks/a.json: created by ci@runner (pid 7) at 2026-01-01\n"
    )

    def run(command: list[str], **_: Any) -> Any:
        return completed(255, stderr=printed)

    with pytest.raises(RecoverError, match=r"created by ci@runner \(pid 7\).*--unlock"):
        PulumiCli("dev", tmp_path, run).import_resources({})


def test_the_import_file_needs_the_provider_for_roles() -> None:
    settings = settings_of("dev", **EXTERNAL)
    (owner,) = [role for role in expected.roles(settings) if role.object == names.OWNER]
    with pytest.raises(RecoverError, match="no admin provider"):
        importfile.import_file(
            [importfile.Adoption(owner, owner.object)], StackState({}), "dev", PROJECT
        )


# --- the command line ---------------------------------------------------------------------


def test_the_command_runs_the_real_clis_it_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recover --stack dev` on a machine with no dev container: `pulumi`
    and `docker` are fakes on PATH that answer as on a fresh machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text('#!/bin/sh\necho \'{"version": 3, "deployment": {}}\'\n')
    (bin_dir / "docker").write_text("#!/bin/sh\necho 'Error: No such container: x' >&2\nexit 1\n")
    for tool in ("pulumi", "docker"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PULUMI_BACKEND_URL", (tmp_path / "state").as_uri())
    assert main(["recover", "--stack", "dev", "--project", str(ROOT)]) == 0
    assert "no server container exists" in capsys.readouterr().out
    assert main(["recover", "--stack", "nosuch", "--project", str(ROOT)]) == 2
    assert "no such stack file" in capsys.readouterr().err

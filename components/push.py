"""`SchemaPush`: the post-deploy schema push, run by `pulumi up` once every
schema, role, grant and default privilege of the access layer exists.

It is one `pulumi_command` local command running `python -m naapdb push` as
the migrator. What it decides:

- when it runs: `triggers` hold a content hash of every migration file (or of
  the Prisma schema in prisma mode) and the server's identity, so a changed
  file or a new server replaces the command (the push runs) and an unchanged
  tree runs nothing;
- how it connects: `DATABASE_URL` (single rotation) or
  `NAAPDB_DATABASE_SECRET_ID` (alternating rotation, whose current login only
  Secrets Manager knows after the first rotation) for the orchestrating
  migrator, and `NAAPDB_PUSH_KEY`, from which each schema's push login's
  password derives, in a secret `environment`; never on the command line;
- when, relative to the rest: after the access layer and after the admin's
  adoption (`components/adopt.py`), so every object already has its
  schema's owner when a schema's login runs its files;
- what it may print: only the push's own lines (file names and durations,
  never the URL); `stdout`/`stderr` are secret outputs all the same.
"""

from __future__ import annotations

import hashlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import pulumi
from pulumi_command import local

from components.credentials import Credentials, connection_url
from components.server import DatabaseServer
from components.settings import aws_region
from naapdb import names, rds_ca
from naapdb.plan import Rotation
from naapdb.prisma import PrismaSchemaError, find_schema_file
from naapdb.push import SECRET_ID_VARIABLE
from naapdb.pushkey import PUSH_KEY_VARIABLE
from naapdb.settings import PushSettings, StackSettings

PUSH_TYPE = "naap:database:SchemaPush"
# The project root: Pulumi runs the program and its providers from here, so
# `python -m naapdb` finds the package and relative paths stay the same on
# every machine (an absolute path would differ and re-run the push).
ROOT = Path(__file__).resolve().parent.parent


class SchemaPush(pulumi.ComponentResource):
    """`python -m naapdb push` after the access layer, whenever the sources change."""

    command: local.Command
    source_hash: str
    """sha256 of the push's sources (migration files or the Prisma schema)."""

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server: DatabaseServer,
        credentials: Credentials,
        access_resources: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(PUSH_TYPE, name, None, opts)
        push = settings.push
        self.source_hash = source_hash(push)
        self.command = naapdb_hook(
            f"{name}-command",
            self,
            push_command(settings),
            _environment(settings, server, credentials),
            [self.source_hash, server.identity],
            access_resources,
        )
        self.register_outputs({"mode": push.mode, "source_hash": self.source_hash})


def naapdb_hook(
    name: str,
    parent: pulumi.Resource,
    command: str,
    environment: pulumi.Output[dict[str, str]],
    triggers: Sequence[pulumi.Input[str]],
    after: Sequence[pulumi.Resource],
) -> local.Command:
    """A `python -m naapdb` step of `pulumi up`: the same command on create
    and update, run again when `triggers` change; its connection in a secret
    `environment`, never argv; stdout alone logged (the command's own lines,
    never a URL), its outputs secret all the same; no delete command, so
    destroying the stack runs nothing."""
    return local.Command(
        name,
        create=command,
        update=command,
        environment=environment,
        logging=local.Logging.STDOUT,
        add_previous_output_in_env=False,
        triggers=list(triggers),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(after),
            additional_secret_outputs=["stdout", "stderr"],
        ),
    )


def naapdb_command(command: str, stack: str, *arguments: str) -> str:
    """The shell command a hook runs from the project root: `python -m
    naapdb COMMAND --stack STACK ...` with the program's own interpreter."""
    program = [portable(Path(sys.executable)), "-m", "naapdb", command, "--stack", stack]
    return shlex.join([*program, *arguments])


def push_command(settings: StackSettings) -> str:
    """The shell command the push hook runs, from the project root."""
    return naapdb_command("push", settings.stack, *_source_arguments(settings.push))


def _source_arguments(push: PushSettings) -> list[str]:
    if push.mode == "prisma" and push.prisma_dir:
        return ["--prisma", portable(_project_path(push.prisma_dir))]
    return ["--source", portable(_project_path(push.source))]


def source_hash(push: PushSettings) -> str:
    """A content hash of what the push reads: every file under the migrations
    directory (sorted relative paths and their bytes), or the Prisma schema."""
    digest = hashlib.sha256(f"mode={push.mode}\0".encode())
    if push.mode == "prisma" and push.prisma_dir:
        directory = _project_path(push.prisma_dir)
        try:
            files = [find_schema_file(directory)]
        except PrismaSchemaError as error:
            raise pulumi.RunError(f"naap-db:push.prismaDir: {error}") from None
    else:
        directory = _project_path(push.source)
        if not directory.is_dir():
            raise pulumi.RunError(
                f"naap-db:push.source: {directory} is not a directory; point it at the migrations"
            )
        files = sorted(
            path
            for path in directory.rglob("*")
            if path.is_file() and not any(part.startswith(".") for part in path.parts)
        )
        _refuse_links(directory, files)
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _refuse_links(directory: Path, files: Sequence[Path]) -> None:
    """The push refuses symbolic links in the source tree (naapdb/push.py);
    the preview stops on them already, before reading what they point at."""
    for path in files:
        parts = path.relative_to(directory).parts
        for depth in range(1, len(parts) + 1):
            if (directory.joinpath(*parts[:depth])).is_symlink():
                raise pulumi.RunError(
                    f"naap-db:push.source: {directory.joinpath(*parts[:depth])} is a symbolic "
                    "link; migrations must be regular files of the source tree"
                )


def _environment(
    settings: StackSettings, server: DatabaseServer, credentials: Credentials
) -> pulumi.Output[dict[str, str]]:
    """The connection, secret: the migrator's URL, or under alternating
    rotation the secret that always holds its current login; and the push
    key the schema push logins' passwords derive from."""
    key = credentials.push_key
    if settings.credentials.rotation is Rotation.ALTERNATING:
        arns = credentials.secret_arns
        if names.MIGRATOR not in arns:
            raise pulumi.RunError(
                "naap-db:credentials.rotation: alternating rotation keeps the migrator's "
                f"login in Secrets Manager, but no secret exists for {names.MIGRATOR}"
            )
        extra = {"AWS_REGION": region} if (region := aws_region()) else {}
        extra.update(_bundle_environment(server))
        secret_id = pulumi.Output.all(arns[names.MIGRATOR], key).apply(
            lambda args: {SECRET_ID_VARIABLE: args[0], PUSH_KEY_VARIABLE: args[1], **extra}
        )
        return pulumi.Output.secret(secret_id)
    password = credentials.passwords[names.MIGRATOR]
    sslmode = server.sslmode
    # rds: verify-full against the bundle the admin connection uses.
    root = portable(Path(server.sslrootcert)) if server.sslrootcert else None
    url = pulumi.Output.all(server.host, server.port, server.database, password).apply(
        lambda args: connection_url(
            names.MIGRATOR, args[3], args[0], args[1], args[2], sslmode, root
        )
    )
    extra = _bundle_environment(server)
    return pulumi.Output.secret(
        pulumi.Output.all(url, key).apply(
            lambda args: {"DATABASE_URL": args[0], PUSH_KEY_VARIABLE: args[1], **extra}
        )
    )


def _bundle_environment(server: DatabaseServer) -> dict[str, str]:
    """What tells the push which RDS CA bundle to verify with, when it is not
    the committed one (the push checks it against the pin again, and needs
    the trust flag for one that passed only by `trustCaBundle`)."""
    bundle = server.ca_bundle
    if bundle is None or bundle.path == rds_ca.BUNDLE:
        return {}
    found = {rds_ca.SSLROOTCERT_VARIABLE: portable(bundle.path)}
    if not bundle.pinned:
        found[rds_ca.TRUST_VARIABLE] = "1"
    return found


def _project_path(configured: str) -> Path:
    path = Path(configured)
    return path if path.is_absolute() else ROOT / path


def portable(path: Path) -> str:
    """Relative to the project root when inside it, so the command (an input
    of the resource) is the same on every checkout."""
    absolute = path if path.is_absolute() else ROOT / path
    try:
        return absolute.relative_to(ROOT).as_posix()
    except ValueError:
        return str(absolute)

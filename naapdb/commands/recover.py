"""`recover --stack S [--unlock] [--dry-run]`: after a `pulumi up` that did
not finish, adopt what it created into the state (`pulumi import`), drop
from the state what it removed, and take the lock it left, so that the next
`pulumi up` completes (`naapdb.recover`; docs/recovery.md).

It runs the `pulumi` CLI in the project's directory with the caller's
environment (backend, passphrase or KMS credentials: what `pulumi up`
needs), reads the server as the stack's own admin (the provider's
credentials from the state, never printed), and the dev containers with the
`docker` CLI. Exit 0 when done (nothing to do included), 2 on error."""

from __future__ import annotations

import argparse

from naapdb.commands import add_project_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. dev")
    parser.add_argument(
        "--unlock",
        action="store_true",
        help="remove the stack's lock first (`pulumi cancel`): only where no other "
        "update can run on the stack, as in CI's serialized deploy job",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what it would import, refresh or unlock, and change nothing",
    )
    add_project_argument(parser)


def run(args: argparse.Namespace) -> int:
    from naapdb.connection import connect
    from naapdb.project import find_project_root
    from naapdb.recover import Recovery, recover
    from naapdb.recover.cli import PulumiCli
    from naapdb.stackfiles import load_stack_settings

    root = args.project or find_project_root()
    settings = load_stack_settings(args.stack, root)
    recovery = Recovery(
        stack=args.stack,
        settings=settings,
        project=root,
        cli=PulumiCli(args.stack, root),
        connect=connect,
        docker_version=_sdk_version("pulumi_docker"),
    )
    changed = recover(recovery, unlock=args.unlock, dry_run=args.dry_run)
    if changed and not args.dry_run:
        print(f"recovered: `pulumi up --stack {args.stack}` can now complete")
    return 0


def _sdk_version(distribution: str) -> str | None:
    """The version of an installed Pulumi SDK, read from its metadata (the
    default provider the program asks for is named after it); naapdb never
    imports pulumi."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None

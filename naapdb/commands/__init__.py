"""One module per command of `python -m naapdb`: each has `add_arguments(parser)`
and `run(args) -> int`, a plain function returning the exit code."""

from __future__ import annotations

import argparse
from pathlib import Path

PROJECT_FILE = "Pulumi.yaml"


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    """`--project DIR`: where Pulumi.yaml is, for every command that reads the stack files."""
    parser.add_argument(
        "--project",
        type=project_directory,
        default=None,
        metavar="DIR",
        help="the naap-db checkout (the directory holding Pulumi.yaml); default: the "
        "nearest one from the current directory upwards, else the checkout of this code",
    )


def project_directory(value: str) -> Path:
    """A `--project` value, refused (exit 2, one line) unless it holds Pulumi.yaml."""
    path = Path(value)
    if not (path / PROJECT_FILE).is_file():
        raise argparse.ArgumentTypeError(
            f"{value} holds no {PROJECT_FILE}; name the naap-db checkout's directory"
        )
    return path

"""One module per command of `python -m naapdb`: each has `add_arguments(parser)`
and `run(args) -> int`, a plain function returning the exit code."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_project_argument(parser: argparse.ArgumentParser) -> None:
    """`--project DIR`: where Pulumi.yaml is, for every command that reads the stack files."""
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="directory of Pulumi.yaml (default: found upwards)",
    )

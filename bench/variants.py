"""Engine settings and program changes a benchmark applies to its copy of
the project (never to the checkout): the designs bench/designs.py weighs,
which bench/engine.py can also apply to its Pulumi side (`--design`)."""

from __future__ import annotations

from tests.engine import Project

ONE_FRAME = """\
# bench/designs.py `one-frame`: each resource's stack trace cut to its first
# frame (the source position `pulumi` shows), before the program registers any.
import pulumi.runtime.resource as _resource

_full_stack_trace = _resource._get_stack_trace


def _first_frame():  # type: ignore[no-untyped-def]
    trace = _full_stack_trace()
    del trace.frames[1:]
    return trace


_resource._get_stack_trace = _first_frame
"""
QUIET_LOG = """\
# bench/designs.py `quiet-log`: the SDK's debug messages not sent. Each
# `pulumi.log.debug` is a synchronous Engine.Log call on the event loop's
# thread (pulumi/log.py `_log`), three or more per registered resource;
# the CLI drops them unless run with -v. Measures that cost; not a product
# setting (it would patch the SDK).
import pulumi.log as _log

_log.debug = lambda *args, **kwargs: None
"""
# Since issue 23 the project's default (`as-is`, tests/engine.py's
# environment) skips intermediate checkpoints; `checkpoints` is what a user
# without that setting gets, and prod's updates: the state after every step.
CHECKPOINTS = {"PULUMI_SKIP_CHECKPOINTS": "false"}
SKIP = {"PULUMI_SKIP_CHECKPOINTS": "true"}
DESIGNS: dict[str, tuple[dict[str, str], str]] = {
    "as-is": ({}, ""),
    "checkpoints": (CHECKPOINTS, ""),
    "skip-checkpoints": (SKIP, ""),
    "no-backups": ({**CHECKPOINTS, "PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS": "true"}, ""),
    "one-frame": (CHECKPOINTS, ONE_FRAME),
    "skip-checkpoints+one-frame": (SKIP, ONE_FRAME),
    "quiet-log": ({}, QUIET_LOG),
}


def apply_design(project: Project, design: str) -> None:
    environment, prelude = DESIGNS[design]
    project.environment.update(environment)
    if prelude:
        main = project.path / "__main__.py"
        text = main.read_text()
        head, future, rest = text.partition("from __future__ import annotations\n")
        main.write_text(head + future + prelude + rest if future else prelude + text)

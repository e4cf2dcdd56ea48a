"""The program's own process. The engine interrupts it (SIGINT) when it
stops early: after a failed step, or on Cancel (Ctrl-C), where the language
host gives it a grace period and then kills it. Python's default turns that
SIGINT into a KeyboardInterrupt inside whatever gRPC call the SDK is making
to an engine that has already gone, and prints a traceback of about a
hundred lines after the step's one-line error. The engine has said what went
wrong by then, so the program leaves without a word, with the executor's
"already reported" exit code."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

# pulumi-language-python-exec's code for "the user has been shown the error".
ALREADY_REPORTED = 32


def leave_quietly_when_interrupted() -> None:
    """Make SIGINT end the program at once, silently."""
    signal.signal(signal.SIGINT, _leave)


def _leave(signum: int, frame: FrameType | None) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(ALREADY_REPORTED)

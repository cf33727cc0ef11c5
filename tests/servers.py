"""Real server processes for tests (llama.cpp's OpenAI server, `assistants serve`)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
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


def served(domain: str, tmp_path_factory, **env: str) -> Iterator[str]:
    """``assistants serve DOMAIN`` over the state ``up`` made (the caller's fixture ingests
    first), with ``env`` added (e.g. setting overrides): its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "assistants.cli", "serve", domain, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    # A generous start-up bound: several engineers' tests may share the 2 cores.
    with running(cmd, f"{url}/healthz", tmp_path_factory.mktemp(f"serve-{domain}") / "serve.log", timeout_s=600,
                 env={**os.environ, **env}):
        yield url


@contextmanager
def round_robin(upstreams: Sequence[str], port: int) -> Iterator[str]:
    """A real HTTP load balancer in front of ``upstreams`` (each a llama.cpp server with one
    slot), streaming each response through as it comes: a model server with several slots, as
    vLLM or llama.cpp's own server with --parallel would be. Yields its /v1 URL."""
    import itertools
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    turn = itertools.cycle(upstreams)
    client = httpx.AsyncClient(timeout=600)

    async def forward(request: Request):
        upstream = client.build_request(request.method, next(turn) + request.url.path, content=await request.body(),
                                        headers={"content-type": request.headers.get("content-type", "application/json")})
        resp = await client.send(upstream, stream=True)

        async def body():
            try:
                async for part in resp.aiter_raw():
                    yield part
            finally:
                await resp.aclose()  # a client that left closes the upstream request too

        return StreamingResponse(body(), status_code=resp.status_code, media_type=resp.headers.get("content-type"))

    app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the load balancer did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

"""Which llama.cpp server runs the managed engine: the prebuilt xllamacpp wheel (llama.cpp's
own server, parallel slots) against llama-cpp-python's server, on the same GGUF, prompts,
threads and machine, in one run.

  python benchmarks/engine_servers.py [--streams 4] [--tokens 128] [--rounds 3]

Each server answers ``--streams`` chat requests at once (greedy, ``--tokens`` tokens each,
no early stop), ``--rounds`` times, after one warm-up round; then one request alone.
Measured from the client: aggregate tokens/s, and time to first token (streamed) p50/max.

Last line: ``RESULT streams=<n> throughput_ratio=<xllamacpp tokens/s over llama-cpp-python's>
ttft_ratio=<llama-cpp-python's max TTFT over xllamacpp's> single_ratio=<one request alone, same order as throughput>``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.generation.engine import EngineManager, EngineSpec  # noqa: E402
from shared.generation.models import bundled_gguf  # noqa: E402


@contextmanager
def xllamacpp_server(streams: int, threads: int) -> Iterator[str]:
    manager = EngineManager(Path(tempfile.mkdtemp(prefix="bench-engines-")))
    try:
        yield manager.ensure(EngineSpec(str(bundled_gguf()), (), streams, 1024, threads)).url
    finally:
        manager.stop()


@contextmanager
def llama_cpp_python_server(threads: int) -> Iterator[str]:
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", str(threads),
                             # Its default lets a new request cut off the one streaming: queue instead.
                             "--interrupt_requests", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("llama-cpp-python's server did not start")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def one(url: str, i: int, tokens: int) -> tuple[float, int]:
    """(seconds to the first token, tokens) of one streamed chat request."""
    import httpx

    body = {"messages": [{"role": "user", "content": f"Tell me about the sea and ships ({i})."}], "stream": True,
            "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
    t0, first, n = time.perf_counter(), None, 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=600) as resp:
        if resp.status_code != 200:
            raise SystemExit(f"{url} answered {resp.status_code}: {resp.read()[:300]!r}")
        for line in resp.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            delta = (json.loads(line[5:])["choices"][0].get("delta") or {}).get("content")
            if delta:
                first = first if first is not None else time.perf_counter() - t0
                n += 1
    if n < tokens:
        raise SystemExit(f"{url} streamed {n} of {tokens} tokens: cut off")
    return first, n


def measure(url: str, streams: int, tokens: int, rounds: int) -> dict:
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(lambda i: one(url, i, tokens), range(streams)))  # warm-up
        ttfts, count, t0 = [], 0, time.perf_counter()
        for r in range(rounds):
            for ttft, n in pool.map(lambda i: one(url, i + 100 * r, tokens), range(streams)):
                ttfts.append(ttft)
                count += n
        wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    _, alone = one(url, 999, tokens)
    single = alone / (time.perf_counter() - t1)
    ttfts.sort()
    return {"tok_s": count / wall, "ttft_p50": ttfts[len(ttfts) // 2], "ttft_max": ttfts[-1], "single": single}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    threads = os.cpu_count() or 1
    results = {}
    with xllamacpp_server(args.streams, threads) as url:
        results["xllamacpp"] = measure(url, args.streams, args.tokens, args.rounds)
    with llama_cpp_python_server(threads) as url:
        results["llama-cpp-python"] = measure(url, args.streams, args.tokens, args.rounds)
    for name, r in results.items():
        print(f"{name:17s} {args.streams} at once: {r['tok_s']:6.1f} tok/s, TTFT p50 {r['ttft_p50']:.2f} s, "
              f"max {r['ttft_max']:.2f} s; one alone {r['single']:.1f} tok/s")
    x, lp = results["xllamacpp"], results["llama-cpp-python"]
    print(f"RESULT streams={args.streams} throughput_ratio={x['tok_s'] / lp['tok_s']:.2f} "
          f"ttft_ratio={lp['ttft_max'] / x['ttft_max']:.2f} single_ratio={x['single'] / lp['single']:.2f}")


if __name__ == "__main__":
    main()

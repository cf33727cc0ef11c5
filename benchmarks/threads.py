"""Threads and OpenMP wait policy of the managed engine when it shares the cores with a
background training job: what `generation.threads` and `generation.wait_policy` should be.

  python benchmarks/threads.py [--seconds 12] [--streams 4]

For each engine setting (threads 1 and all cores; wait policy spin-then-sleep and passive)
in one run: the engine's decoding rate (``--streams`` answers of 128 tokens at once, short
prompt, for ``--seconds``) alone, then beside a training-like job (a torch matmul loop on
one thread, at `jobs.nice` 19 as `assistants jobs` runs training); and the job's step time alone and
beside each engine setting. A step of the real training took 2 s alone and 100x longer
beside a spinning llama.cpp (issue 20), which is what this guards.

Last line: ``RESULT threads=<n> wait_policy=<p> decode_tok_s=<alone> decode_ratio_beside_job=<beside/alone>
job_step_ratio=<beside/alone> all_cores_ratio_beside_job=<the same decode ratio on every core>
single_decode_ratio_passive=<one answer's rate, passive over spin-then-sleep>`` for the
engine's default (one core fewer than the machine has, spin-then-sleep). A rate of 0 is a
stall: no answer within a minute.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.generation.engine import EngineManager, EngineSpec  # noqa: E402
from shared.generation.models import bundled_gguf  # noqa: E402

# A training-like job: matmuls on one thread, printing each step's seconds.
JOB = """
import sys, time, torch
torch.set_num_threads(1)
a = torch.randn(384, 384); b = torch.randn(384, 384)
while True:
    t = time.perf_counter()
    for _ in range(200):
        a = torch.tanh(a @ b)
    print(time.perf_counter() - t, flush=True)
"""
STALL_S = 60  # 128 tokens take about 2 s here; a minute without an answer is a stall
PROMPT = "<|im_start|>user\nTell me about the sea and ships.<|im_end|>\n<|im_start|>assistant\n"


def decode_rate(url: str, streams: int, seconds: float) -> float:
    """Tokens per second over ``streams`` answers decoded at once, for about ``seconds``."""
    import httpx

    body = {"prompt": PROMPT, "n_predict": 128, "temperature": 0, "ignore_eos": True, "cache_prompt": False}
    tokens, t0 = 0, time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        while time.perf_counter() - t0 < seconds:
            try:
                done = list(pool.map(lambda _: httpx.post(f"{url}/completion", json=body, timeout=STALL_S).json(),
                                     range(streams)))
            except httpx.TimeoutException:
                return 0.0  # stalled: no answer within STALL_S
            tokens += sum(d["tokens_predicted"] for d in done)
    return tokens / (time.perf_counter() - t0)


class Job:
    """The background job, niced; its step times as they come."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", JOB], stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1"}, preexec_fn=lambda: os.nice(19))
        self.proc.stdout.readline()  # the first step warms up

    def step(self, n: int = 3) -> float:
        times = sorted(float(self.proc.stdout.readline()) for _ in range(n))
        return times[len(times) // 2]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    state = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    manager = EngineManager(state)
    job = Job()
    job_alone = job.step()
    job.stop()
    rows = []
    try:
        for threads in sorted({1, cores}):
            for policy in ("spin-then-sleep", "passive"):
                running = manager.ensure(EngineSpec(str(bundled_gguf()), (), args.streams, 1024, threads, policy))
                single = decode_rate(running.url, 1, args.seconds / 2)
                alone = decode_rate(running.url, args.streams, args.seconds)
                job = Job()
                try:
                    beside = decode_rate(running.url, args.streams, args.seconds)
                    step = job.step()
                finally:
                    job.stop()
                    manager.stop()  # a stalled engine may still be decoding
                rows.append((threads, policy, single, alone, beside, step))
                print(f"threads={threads} {policy:16s} one answer {single:5.1f} tok/s; {args.streams} at once "
                      f"{alone:5.1f} tok/s alone, {beside:5.1f} beside the job; job step {step:.2f} s "
                      f"(alone {job_alone:.2f} s)", flush=True)
    finally:
        manager.stop()
    default = max(1, cores - 1)  # the engine's default threads (generation.threads unset)
    chosen = next(r for r in rows if r[0] == default and r[1] == "spin-then-sleep")
    every = next(r for r in rows if r[0] == cores and r[1] == "spin-then-sleep")
    passive = next(r for r in rows if r[0] == default and r[1] == "passive")
    print(f"RESULT threads={default} wait_policy=spin-then-sleep decode_tok_s={chosen[3]:.1f} "
          f"decode_ratio_beside_job={chosen[4] / chosen[3]:.2f} job_step_ratio={chosen[5] / job_alone:.2f} "
          f"all_cores_ratio_beside_job={every[4] / every[3]:.2f} "
          f"single_decode_ratio_passive={passive[2] / chosen[2]:.2f}")


if __name__ == "__main__":
    main()

"""First run: how long a new user waits, from ``assistants up`` on an empty state dir (the
venv ready) until each of the three UIs answers a question through its API, and what a
background training job costs a user's time to first token.

  python benchmarks/first_run.py [--max-steps 60] [--ttft-turns 3] [--timeout 3600] [--keep DIR]

It runs ``assistants up --port-base P`` in a temporary state dir (its own embedded
Postgres; ``DATABASE_URL`` is ignored), then:
  * each UI is asked its first example question through ``gradio_client``'s ``/ask``
    (finance with a demo login) as soon as it accepts a connection; ``first_answer_s`` is
    the slowest of the three, counted from the start of ``up``;
  * while the medical adapter trains (``/readyz`` says "training, step n/N"), one user's
    time to first token on finance (the UI's streaming ``/chat``) over ``--ttft-turns``
    questions; then the same questions once every job is done; the ratio of the medians is
    ``ttft_ratio_while_training``;
  * after the jobs: medical's ``/readyz`` and an ``/ask`` answer must name ``medical/v0001``,
    served by the same ``up`` process, never restarted (``adapter_switched``).
``--max-steps`` sets ``ASSISTANTS_JOBS__MAX_STEPS`` (default: train.yaml's 60 steps).
Last line: ``RESULT first_answer_s=<s> ttft_ratio_while_training=<x> adapter_switched=<0|1>``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistants.domains import DOMAINS, settings_for  # noqa: E402
from benchmarks.load import User  # noqa: E402

LOGIN = ("alice", "alice-demo-pass")  # finance's demo login (finance/portfolios/users.csv)


def free_ports(n: int, start: int = 18600) -> int:
    """A base port with ``n`` free ports from it."""
    for base in range(start, 60000, n):
        try:
            for p in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise SystemExit("no free ports")


def first_answers(urls: dict[str, str], t0: float, timeout: float) -> dict[str, float]:
    """Seconds from ``t0`` until each UI answered its first example question (in parallel:
    one slow UI does not delay measuring another)."""
    from gradio_client import Client

    took: dict[str, float] = {}

    def ask(domain: str) -> None:
        s = settings_for(domain)
        while time.monotonic() - t0 < timeout:
            try:
                client = Client(urls[domain], auth=LOGIN if s.ui.login else None, verbose=False,
                                analytics_enabled=False, download_files=False)
                turn = client.predict(s.chat.examples[0], "", api_name="/ask")
            except Exception:  # noqa: BLE001 - not up yet: try again
                time.sleep(0.5)
                continue
            if turn.get("answer", "").strip():
                took[domain] = time.monotonic() - t0
                return

    threads = [threading.Thread(target=ask, args=(d,)) for d in DOMAINS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return took


def readyz(url: str) -> dict:
    import httpx

    return httpx.get(url + "/readyz", timeout=10).json()


def wait_for(check, timeout: float, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise SystemExit(f"assistants up exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


def median_ttft(url: str, questions: list[str], turns: int) -> float:
    """One user's median time to first token, a fresh conversation per question."""
    user = User(url, LOGIN, questions, turns=1, timeout=600, seed=0)
    try:
        user.ask(questions[0])  # warm-up, not counted
        ttfts = []
        for q in (questions * turns)[:turns]:
            user.new_conversation()
            turn = user.ask(q)
            if turn.error or turn.ttft is None:
                raise SystemExit(f"finance turn failed: {turn.error}")
            ttfts.append(turn.ttft)
        return statistics.median(ttfts)
    finally:
        user.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-steps", type=int, help="training steps of each background job (default: train.yaml's)")
    ap.add_argument("--ttft-turns", type=int, default=3, help="finance questions timed in each phase")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed for the jobs to finish")
    ap.add_argument("--keep", type=Path, help="an empty state dir to run in and keep (its trained adapters) "
                                              "instead of a temporary one")
    args = ap.parse_args()

    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        raise SystemExit(f"--keep {args.keep}: not empty; a first run starts from an empty state dir")
    state = Path(tempfile.mkdtemp(prefix="bench-first-run-")) if not args.keep else args.keep.resolve()
    state.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("ASSISTANTS_DATABASE__")}
    env.update(ASSISTANTS_STATE_DIR=str(state), ASSISTANTS_JOBS__POLL_S="1")
    if args.max_steps:
        env["ASSISTANTS_JOBS__MAX_STEPS"] = str(args.max_steps)
    base = free_ports(len(DOMAINS))
    urls = {d: f"http://127.0.0.1:{base + i}" for i, d in enumerate(DOMAINS)}
    os.environ["ASSISTANTS_STATE_DIR"] = str(state)  # settings_for() here: the same state dir
    log = state / "up-terminal.log"
    t0 = time.monotonic()
    with open(log, "wb") as sink:  # a file, not a pipe: a full pipe would block `up`
        proc = subprocess.Popen([sys.executable, "-m", "assistants.cli", "up", "--port-base", str(base)],
                                stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        took = first_answers(urls, t0, timeout=600)
        for d in DOMAINS:
            print(f"{d}: first answer after {took.get(d, float('nan')):.1f} s", flush=True)
        medical = urls["medical"]
        wait_for(lambda: "step" in (readyz(medical).get("training") or ""), args.timeout, "a training step", proc)
        print(f"medical while training: {readyz(medical)['training']}", flush=True)
        finance_q = settings_for("finance").chat.examples
        busy = median_ttft(urls["finance"], finance_q, args.ttft_turns)
        training = readyz(medical).get("training")
        print(f"finance TTFT while training: {busy:.2f} s (medical then: {training})", flush=True)
        wait_for(lambda: all(not readyz(u).get("training") for u in urls.values()), args.timeout, "the jobs", proc)
        idle = median_ttft(urls["finance"], finance_q, args.ttft_turns)
        print(f"finance TTFT with no job: {idle:.2f} s", flush=True)
        from gradio_client import Client

        answer = Client(medical, verbose=False, download_files=False).predict(
            settings_for("medical").chat.examples[0], "", api_name="/ask")
        served = (readyz(medical).get("adapter") or "", (answer.get("generator") or {}).get("adapter") or "")
        print(f"medical after the jobs: /readyz adapter {served[0]!r}, /ask adapter {served[1]!r}", flush=True)
        switched = int(proc.poll() is None and all("medical/v0001" in s for s in served))
        print(log.read_text(errors="replace"))
        slowest = max(took.values()) if len(took) == len(DOMAINS) else float("nan")
        print(f"RESULT first_answer_s={slowest:.1f} ttft_ratio_while_training={busy / idle:.2f} "
              f"adapter_switched={switched}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        from shared.db import embedded
        from shared.generation.engine import EngineManager

        EngineManager(state).stop()  # the model engine outlives `up`, as the embedded Postgres does
        embedded.stop(state / "pg")
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Load benchmark: N simulated users chat with a served assistant at once, through
``gradio_client`` and the UI's own streaming ``/chat`` endpoint, for a fixed time; the same
users and questions against serialized serving (the model inside the app, one turn at a
time: ``generation.serve: in-process``) and concurrent serving (the managed llama.cpp engine
with parallel slots: ``generation.serve: engine``), one after the other in one run.

  python benchmarks/load.py [--users 20] [--duration 60] [--ramp 10] [--domain finance] [--max-requests N]
                            [--url http://127.0.0.1:PORT] [--auth USER:PASSWORD ...] [--questions Q ...]
                            [--engine llamacpp|vllm] [--vllm-env DIR]

``--engine vllm`` compares, in the same run and the same way, the managed llama.cpp engine
with vLLM (the ``vllm`` profile: the app on the ``openai`` backend against one vLLM server,
started for the run from its own virtualenv, ``scripts/vllm.sh env``, and stopped after);
its last line is ``RESULT users=<n> engine=vllm vllm_over_llamacpp_turns_ratio=<turns/s
ratio> vllm_turns_s= llamacpp_turns_s= vllm_ttft_p50_s= vllm_ttft_p95_s= llamacpp_ttft_p50_s=
llamacpp_ttft_p95_s= errors=<n>``.

Without ``--url`` it prepares its own deployment in a temporary state dir, exactly as a
user would (``assistants up --no-serve --no-train``: samples ingested, finance's logins,
books and market data loaded; the embedded Postgres), serves the domain with
``assistants serve DOMAIN --host 127.0.0.1`` on a free port in each serving mode, and
removes it all at the end (``DATABASE_URL`` is ignored then: nothing reaches a configured
database). Both modes get a generation queue as deep as the users (``max_queue``), so the
run measures waiting, not turns refused as busy.
``--url`` drives a running deployment instead (one mode: no throughput ratio); loopback
addresses only, so the load never leaves this machine, and its database (the same
``ASSISTANTS_STATE_DIR``/``DATABASE_URL``) must be reachable from here for the records check.

Measures, per serving mode:
  * baseline: one user alone: a warm-up conversation (not counted), then ``--baseline``
    turns, by default each question once, the mix the users then ask;
  * load: ``--users`` users in parallel, each its own Gradio session (and login: on a
    domain with ``ui.login`` they cycle through the given logins, so several principals
    and their row-level security are exercised), each holding conversations of
    ``--turns`` questions that continue one conversation id, then starting a new one; no
    pause between turns (closed loop: the heaviest load N users can give); the users join
    evenly over the first ``--ramp`` seconds (default 10), as users arrive at a service
    (``--ramp 0``: all submit their first question at the same instant);
  * per turn: time to first token as the user sees it (submit to the first update whose
    new answer is not empty; a finance portfolio answer is checked before it is shown, so
    it arrives whole), full answer (submit to the final update), queue wait (submit to
    Gradio starting the event); requests/s; p50/p95 of each;
  * turns that need no model: the domain's questions answered by code (a refused
    portfolio, an escalation) are in the mix; their p95 from submit to the complete answer;
  * errors: any exception, a turn not finished within ``--timeout``, an ``**Error:**``
    status, an empty answer; then every answered turn must be in Postgres (an assistant
    message without error for that principal since the run began): ``recorded=<n> of <n>``,
    each missing one is an error.
Last line: ``RESULT users=<n> throughput_ratio=<concurrent turns/s over serialized>
nomodel_p95_s=<no-model turns' p95 under load, concurrent> p95_ttft_ratio=<loaded p95 TTFT
over the single user's, concurrent> errors=<n>``; exit 1 on errors.

Bounded: no turn starts after ``--duration`` (or ``--max-requests``), a turn is given up
after ``--timeout``, ``--hard-limit`` stops whatever runs past it, and the servers and the
engine it started are stopped however the run ends.
"""
from __future__ import annotations

import argparse
import atexit
import csv
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No telemetry from the client or the server: nothing leaves the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistants.domains import DOMAINS, settings_for  # noqa: E402
from benchmarks.common import pct  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CLI = [sys.executable, "-m", "assistants.cli"]
STARTUP_S = 300  # preparing the deployment, then the server's start (model load), each
# gradio_client's own Job iterator re-checks every millisecond; 20 users doing that would
# take CPU from the server being measured on a small machine.
POLL_S = 0.02
# Portfolio questions: answered from the client books by code (tools), under each login's RLS.
PORTFOLIO = {"finance": ["How much is my portfolio worth?", "How did my portfolio perform this year?",
                         "What are my unrealized gains?"]}
# Questions answered by code, never by the model: a refused portfolio (nobody may see a
# "Zed Quill"), an emergency escalated by the rules.
NOMODEL = {"finance": ["What does Zed Quill hold in his brokerage account?"],
           "medical": ["I have crushing pain in my chest spreading to my left arm and I'm sweating."]}
# How each mode serves the model; both with a generation queue as deep as the users.
MODES = {"serialized": {"ASSISTANTS_GENERATION__SERVE": "in-process"},
         "concurrent": {"ASSISTANTS_GENERATION__SERVE": "engine"}}
# --engine vllm: the local llama.cpp engine against vLLM (the `vllm` profile: the openai
# backend against one vLLM server from its own virtualenv, started for the run).
VLLM_MODES = {"engine": {"ASSISTANTS_GENERATION__SERVE": "engine"},
              "vllm": {"ASSISTANTS_GENERATION__BACKEND": "openai", "ASSISTANTS_GENERATION__SERVER": "vllm",
                       "ASSISTANTS_GENERATION__MAX_CONCURRENCY": "8"}}  # as in shared/profiles/vllm.yaml
ERROR_STATUS = "**Error:**"
STARTED = {"PROCESSING", "ITERATING", "PROGRESS", "FINISHED"}


@dataclass
class Turn:
    principal: str
    ttft: float | None   # seconds; None when no answer text ever arrived
    total: float
    wait: float          # in Gradio's queue before the event started
    error: str | None
    queued_at: int = 0   # the furthest back in Gradio's queue it was told it stood (1: next)
    nomodel: bool = False  # a question answered by code


class Budget:
    """When the users stop: a deadline and a request cap, checked before each new turn
    (a turn under way is finished, within its own timeout)."""

    def __init__(self, seconds: float, cap: int | None):
        self.deadline, self.left, self.lock = time.monotonic() + seconds, cap, threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if time.monotonic() >= self.deadline or self.left == 0:
                return False
            if self.left is not None:
                self.left -= 1
            return True


def answer_text(history: list, sent: int) -> str:
    """The new answer's text in a returned chat history: the message after the question
    this turn added, in either of the Chatbot's content forms."""
    if len(history or []) != sent + 2 or history[-1].get("role") != "assistant":
        return ""
    content = history[-1].get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text") or "" for part in content or [] if isinstance(part, dict))


class User:
    """One simulated user: a Gradio session (the login's, with auth) holding
    conversations as the UI does, the chat history passed back on each turn."""

    def __init__(self, url: str, auth: tuple[str, str] | None, questions: list[str], turns: int, timeout: float,
                 seed: int, nomodel: frozenset[str] = frozenset()):
        from gradio_client import Client

        self.client = Client(url, auth=auth, verbose=False, analytics_enabled=False, download_files=False)
        self.login = auth[0] if auth else None
        self.questions = questions[:]
        random.Random(seed).shuffle(self.questions)
        self.next_question = itertools.cycle(self.questions)
        self.turns, self.timeout, self.nomodel = turns, timeout, nomodel
        self.history: list = []
        self.sessions = [self.client.session_hash]

    @property
    def principal(self) -> str:
        # What the server's principal_of() sees: the login, else the session.
        return self.login or f"anon-{self.client.session_hash}"

    def new_conversation(self) -> None:
        """What the "New conversation" button does: a fresh session has no conversation
        id in its state (the login, held in cookies, stays)."""
        self.client.reset_session()
        self.sessions.append(self.client.session_hash)
        self.history = []

    def ask(self, question: str) -> Turn:
        turn = self._ask(question)
        turn.nomodel = question in self.nomodel
        return turn

    def _ask(self, question: str) -> Turn:
        sent, principal = len(self.history), self.principal
        t0 = time.perf_counter()
        ttft = wait = None
        queued = 0
        try:
            job = self.client.submit(question, self.history, api_name="/chat")
            while True:
                now = time.perf_counter() - t0
                outputs = job.outputs()
                if ttft is None and outputs and answer_text(outputs[-1][1], sent).strip():
                    ttft = now
                status = job.status()
                if status.code.name == "IN_QUEUE" and status.rank is not None:
                    queued = max(queued, status.rank + 1)
                if wait is None and status.code.name in STARTED:
                    wait = now
                if job.done():
                    break
                if now > self.timeout:
                    job.cancel()
                    return Turn(principal, ttft, now, wait or now, f"no answer within {self.timeout:g} s", queued)
                time.sleep(POLL_S)
            _, history, _, status_text, _ = job.result()
        except Exception as e:  # anything the client raises is a failed turn, reported by kind
            total = time.perf_counter() - t0
            return Turn(principal, ttft, total, wait or total, f"{type(e).__name__}: {e}", queued)
        total = time.perf_counter() - t0
        answer, error = answer_text(history, sent).strip(), None
        # A failed turn shows the error in the status line, and may show it in the chat too.
        if str(status_text or "").startswith(ERROR_STATUS) or answer.startswith(ERROR_STATUS):
            error = str(status_text or answer)
        elif not answer:
            error = "empty answer"
        else:
            self.history = history
        return Turn(principal, ttft, total, wait if wait is not None else total, error, queued)

    def run(self, budget: Budget, done) -> None:
        """Conversations of ``turns`` questions until the budget says stop; a failed turn
        ends its conversation (its state may be stale)."""
        while True:
            for _ in range(self.turns):
                if not budget.take():
                    return
                turn = self.ask(next(self.next_question))
                done(turn)
                if turn.error:
                    break
            self.new_conversation()

    def close(self) -> None:
        self.client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def prepared(startup_s: float) -> Iterator[Path]:
    """A temporary state dir prepared as a user would (``up --no-serve --no-train``); yields
    it. The engine, the embedded Postgres and the folder are removed however the run ends."""
    state = Path(tempfile.mkdtemp(prefix="bench-load-"))
    # Removed at exit, after pgserver's own exit hook (registered later, so run earlier),
    # which re-creates its lock folder under the state dir.
    atexit.register(shutil.rmtree, state, True)
    os.environ["ASSISTANTS_STATE_DIR"] = str(state)
    # Its own embedded Postgres: the samples and the load must not reach a configured server.
    for key in [k for k in os.environ if k == "DATABASE_URL" or k.startswith("ASSISTANTS_DATABASE__")]:
        del os.environ[key]
    try:
        print(f"preparing a deployment in {state} (assistants up --no-serve --no-train) ...", flush=True)
        prep = subprocess.run(CLI + ["up", "--no-serve", "--no-train", "--quiet"], capture_output=True, text=True,
                              timeout=startup_s)
        if prep.returncode != 0:
            raise SystemExit(f"assistants up failed:\n{(prep.stdout + prep.stderr)[-3000:]}")
        yield state
    finally:
        from shared.db import embedded
        from shared.generation.engine import EngineManager
        from shared.generation.vllm import VllmManager

        EngineManager(state).stop()
        VllmManager(state).stop()
        embedded.stop(state / "pg")


@contextmanager
def vllm_server(state: Path, domain: str, env_dir: Path | None, startup_s: float) -> Iterator[dict[str, str]]:
    """vLLM started as `scripts/vllm.sh start` starts it, in the run's state dir, on a free
    loopback port; yields the serve env that points the app at it; stopped after."""
    from shared.finetune.serving import vllm_spec
    from shared.generation.vllm import VllmManager

    manager = VllmManager(state, env_dir)
    spec = vllm_spec(state, [domain], port=free_port())
    t0 = time.monotonic()
    manager.start(spec, timeout_s=startup_s)
    print(f"vllm: started in {time.monotonic() - t0:.0f} s at {spec.url} ({spec.served_name}, "
          f"adapters {list(spec.loras) or 'none'})", flush=True)
    try:
        yield {"ASSISTANTS_GENERATION__BASE_URL": f"{spec.url}/v1"}
    finally:
        manager.stop()


@contextmanager
def served(domain: str, state: Path, env: dict[str, str], startup_s: float) -> Iterator[str]:
    """``assistants serve DOMAIN`` on loopback with ``env`` added; yields the URL, stops it after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = state / f"serve-{port}.log"
    with open(log, "wb") as sink:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(CLI + ["serve", domain, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        wait_ready(proc, f"{url}/healthz", log, startup_s)
        yield url
        if proc.poll() is not None:
            raise SystemExit(f"the server exited during the run:\n{log.read_text()[-3000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(proc: subprocess.Popen, ready_url: str, log: Path, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"assistants serve did not start:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(ready_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)


@contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Abort the measured phases after ``seconds``, whatever hangs (SIGALRM interrupts the
    main thread's joins); the deployment is still stopped by the caller's cleanup."""
    def expire(*_):
        raise SystemExit(f"hard limit of {seconds:g} s reached: run stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def logins(args, settings) -> list[tuple[str, str] | None]:
    """Who the users sign in as: ``--auth``, else finance's demo logins, else nobody (each
    session is then its own anonymous principal)."""
    if args.auth:
        pairs = [a.split(":", 1) for a in args.auth]
        if any(len(p) != 2 for p in pairs):
            raise SystemExit("--auth takes USER:PASSWORD")
        return [tuple(p) for p in pairs]
    if not settings.ui.login:
        return [None]
    if args.domain == "finance":
        from finance.books import SAMPLE_BOOKS

        with (SAMPLE_BOOKS / "users.csv").open() as f:
            return [(row["username"], f"{row['username']}-demo-pass") for row in csv.DictReader(f)]
    raise SystemExit(f"{args.domain} requires a login: give --auth USER:PASSWORD")


class Records:
    """The records check: assistant messages without error, per principal, written since
    the run began (the database's clock), read as the owner (RLS would hide other
    principals' rows)."""

    def __init__(self, settings, own: bool):
        from shared.db import Database, embedded

        self.domain = settings.domain.name
        self.db = Database(settings.database, state_dir=settings.state_dir, embedding_dim=settings.embedding.dim)
        if self.db.embedded and not own and not embedded.is_running(self.db.data_dir):
            raise SystemExit(f"no embedded Postgres runs in {self.db.data_dir}: set ASSISTANTS_STATE_DIR (or "
                             "DATABASE_URL) to the deployment's, so its records can be checked")
        self.db.open()
        with self.db.owner_session() as conn:
            (self.since,) = conn.execute("SELECT clock_timestamp()").fetchone()

    def count(self, principals: set[str]) -> tuple[dict[str, int], int]:
        """(answers without error per principal, answers recorded with an error)."""
        with self.db.owner_session() as conn:
            rows = conn.execute(
                "SELECT m.principal, count(*) FILTER (WHERE m.error IS NULL), count(*) FILTER (WHERE m.error IS NOT NULL)"
                " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE m.role = 'assistant' AND c.domain = %s AND m.created_at >= %s AND m.principal = ANY(%s)"
                " GROUP BY m.principal", (self.domain, self.since, sorted(principals))).fetchall()
        return {p: ok for p, ok, _ in rows}, sum(bad for _, _, bad in rows)

    def close(self) -> None:
        self.db.close()


def phase(users: list[User], seconds: float, cap: int | None, label: str, ramp: float = 0.0) -> tuple[list[Turn], float]:
    """Run ``users`` in parallel until the budget is spent, user i joining at ``i * ramp /
    len(users)`` seconds; (turns, wall seconds)."""
    from tqdm import tqdm

    turns: list[Turn] = []
    lock = threading.Lock()
    bar = tqdm(total=cap, desc=label, unit="turn", file=sys.stderr)

    def done(turn: Turn) -> None:
        with lock:
            turns.append(turn)
            bar.update(1)
            bar.set_postfix(errors=sum(t.error is not None for t in turns))

    budget = Budget(seconds, cap)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=u.run, args=(budget, done), daemon=True) for u in users]
    for i, t in enumerate(threads):
        time.sleep(max(0.0, t0 + i * ramp / len(users) - time.perf_counter()))
        t.start()
    for t in threads:
        t.join()
    bar.close()
    return turns, time.perf_counter() - t0


def summary(name: str, turns: list[Turn], wall: float) -> dict:
    ok = [t for t in turns if t.error is None]
    row = {"name": name, "n": len(turns), "rps": len(turns) / wall if wall else 0.0}
    for key in ("ttft", "total", "wait"):
        values = [getattr(t, key) for t in ok if getattr(t, key) is not None]
        row[key] = (pct(values, 50), pct(values, 95)) if values else (float("nan"), float("nan"))
    return row


def print_table(rows: list[dict]) -> None:
    print(f"{'':14s} {'turns':>6s} {'req/s':>6s} {'TTFT p50':>9s} {'TTFT p95':>9s} {'answer p50':>10s}"
          f" {'answer p95':>10s} {'queue p50':>9s} {'queue p95':>9s}")
    for r in rows:
        print(f"{r['name']:14s} {r['n']:6d} {r['rps']:6.2f} {r['ttft'][0]:8.2f}s {r['ttft'][1]:8.2f}s"
              f" {r['total'][0]:9.2f}s {r['total'][1]:9.2f}s {r['wait'][0]:8.2f}s {r['wait'][1]:8.2f}s")


@dataclass
class Measured:
    """One serving mode's run: the single user's turns, the loaded turns, and the rest."""

    warm: list[Turn]
    base: list[Turn]
    base_wall: float
    load: list[Turn]
    load_wall: float
    client_cpu: float
    principals: set[str]

    def rows(self, mode: str, users: int) -> list[dict]:
        return [summary(f"{mode}, 1 user", self.base, self.base_wall),
                summary(f"{mode}, {users} users", self.load, self.load_wall)]

    def nomodel_p95(self) -> float:
        values = [t.total for t in self.load if t.nomodel and t.error is None]
        return pct(values, 95) if values else float("nan")


def measure(url: str, args, questions: list[str], auths: list, nomodel: frozenset[str]) -> Measured:
    """Warm-up, the single user, then ``--users`` users against ``url``."""
    users: list[User] = []
    try:
        users.append(User(url, auths[0], questions, args.turns, args.timeout, args.seed, nomodel))
        # Not baseline figures: the first turns load the embedding model and the tools.
        warm = [users[0].ask(q) for q in questions[:args.turns]]
        users[0].new_conversation()
        base, base_wall = phase(users, float("inf"), args.baseline or len(questions), "1 user")
        users[0].new_conversation()
        users += [User(url, auths[i % len(auths)], questions, args.turns, args.timeout, args.seed + i, nomodel)
                  for i in range(1, args.users)]
        cpu0 = time.process_time()
        load, load_wall = phase(users, args.duration, args.max_requests, f"{args.users} users", args.ramp)
        # The users run on the server's machine: what they cost it is part of the result.
        client_cpu = time.process_time() - cpu0
        principals = {p for u in users for p in ([f"anon-{s}" for s in u.sessions] if u.login is None else [u.login])}
    finally:
        for u in users:
            u.close()
    return Measured(warm, base, base_wall, load, load_wall, client_cpu, principals)


def report(results: dict[str, Measured], users: int, records: "Records") -> int:
    """Print the table, the errors and the records check; returns the error count."""
    every = [t for m in results.values() for t in m.warm + m.base + m.load]
    answered: dict[str, int] = {}
    for t in every:
        if t.error is None:
            answered[t.principal] = answered.get(t.principal, 0) + 1
    recorded, recorded_errors = records.count(set().union(*(m.principals for m in results.values())))
    unrecorded = sum(max(0, n - recorded.get(p, 0)) for p, n in answered.items())
    print_table([row for mode, m in results.items() for row in m.rows(mode, users)])
    failures = [t for t in every if t.error]
    for reason in sorted({t.error for t in failures}):
        print(f"error x{sum(t.error == reason for t in failures)}: {reason[:300]}")
    for mode, m in results.items():
        print(f"{mode}: no-model turns under load p95 {m.nomodel_p95():.2f} s; the users' own CPU "
              f"{m.client_cpu:.1f} s in {m.load_wall:.1f} s; deepest place in Gradio's queue "
              f"{max((t.queued_at for t in m.load), default=0)} (1: next to run)")
    print(f"recorded={sum(min(n, recorded.get(p, 0)) for p, n in answered.items())} of {sum(answered.values())}"
          f" answered turns ({recorded_errors} error records)")
    return len(failures) + unrecorded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--domain", default="finance", choices=DOMAINS)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60, help="seconds of load per mode (no new turn starts after)")
    ap.add_argument("--max-requests", type=int, help="cap on turns under load")
    ap.add_argument("--baseline", type=int, help="turns of the single user, after a warm-up conversation"
                    " (default: one per question, the mix the users ask)")
    ap.add_argument("--turns", type=int, default=3, help="questions per conversation")
    ap.add_argument("--ramp", type=float, default=10,
                    help="seconds over which the users join, evenly spaced (0: all submit at the same instant)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a turn may take before it counts as failed")
    ap.add_argument("--hard-limit", type=float,
                    help="seconds for everything after the deployment is prepared (both modes; default 1800, "
                         "2700 with --engine vllm, whose start took 1-4 minutes here)")
    ap.add_argument("--url", help="a running deployment on this machine, instead of a temporary one")
    ap.add_argument("--auth", action="append", metavar="USER:PASSWORD", help="a login (repeat: users cycle through)")
    ap.add_argument("--questions", nargs="+", help="default: the domain's chat.examples (and portfolio questions)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", choices=["llamacpp", "vllm"], default="llamacpp",
                    help="llamacpp: serialized vs the managed llama.cpp engine; vllm: that engine vs vLLM "
                         "(the `vllm` profile), one after the other")
    ap.add_argument("--vllm-env", type=Path, default=Path(os.environ.get("VLLM_VENV") or ROOT / "var" / "vllm-env"),
                    help="vLLM's virtualenv (scripts/vllm.sh env)")
    args = ap.parse_args()
    if args.hard_limit is None:
        args.hard_limit = 2700 if args.engine == "vllm" else 1800
    if args.users < 1 or args.duration <= 0 or args.turns < 1:
        ap.error("--users, --duration and --turns must be positive")
    if not 0 <= args.ramp < args.duration:
        ap.error("--ramp must be at least 0 and shorter than --duration")
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        raise SystemExit(f"--url must be a loopback address (127.0.0.1, localhost, ::1), not {args.url}: "
                         "this benchmark loads only this machine")

    settings = settings_for(args.domain)
    nomodel = frozenset(NOMODEL.get(args.domain, []))
    questions = (args.questions or settings.chat.examples + PORTFOLIO.get(args.domain, [])) + sorted(nomodel)
    auths = logins(args, settings)
    results: dict[str, Measured] = {}
    with ExitStack() as stack:
        state = None if args.url else stack.enter_context(prepared(STARTUP_S))
        # Read the settings again: with its own deployment they name the temporary state dir.
        records = Records(settings_for(args.domain), own=not args.url)
        stack.callback(records.close)
        who = "anonymous sessions" if auths == [None] else f"{len(auths)} login(s)"
        modes = {"as served": None} if args.url else VLLM_MODES if args.engine == "vllm" else MODES
        with hard_limit(args.hard_limit):
            for mode, env in modes.items():
                deep = {"ASSISTANTS_GENERATION__MAX_QUEUE": str(args.users),
                        "ASSISTANTS_GENERATION__QUEUE_TIMEOUT_S": str(args.timeout)}
                with ExitStack() as mode_stack:
                    if mode == "vllm":
                        deep.update(mode_stack.enter_context(vllm_server(state, args.domain, args.vllm_env, STARTUP_S)))
                    url = args.url if env is None else mode_stack.enter_context(
                        served(args.domain, state, {**env, **deep}, STARTUP_S))
                    print(f"{mode}: {url}: {args.domain}, {who}, {len(questions)} questions", flush=True)
                    results[mode] = measure(url, args, questions, auths, nomodel)
        errors = report(results, args.users, records)
    if args.engine == "vllm" and "vllm" in results:
        (_, engine), (_, vllm) = (results[m].rows("", args.users) for m in ("engine", "vllm"))
        print(f"RESULT users={args.users} engine=vllm vllm_over_llamacpp_turns_ratio={vllm['rps'] / engine['rps']:.2f} "
              f"vllm_turns_s={vllm['rps']:.3f} llamacpp_turns_s={engine['rps']:.3f} "
              f"vllm_ttft_p50_s={vllm['ttft'][0]:.2f} vllm_ttft_p95_s={vllm['ttft'][1]:.2f} "
              f"llamacpp_ttft_p50_s={engine['ttft'][0]:.2f} llamacpp_ttft_p95_s={engine['ttft'][1]:.2f} errors={errors}")
        sys.exit(1 if errors else 0)
    last = results.get("concurrent") or results["as served"]
    alone, loaded = last.rows("", args.users)
    ratio = loaded["ttft"][1] / alone["ttft"][1]
    throughput = "nan"
    if "serialized" in results:
        throughput = f"{loaded['rps'] / results['serialized'].rows('', args.users)[1]['rps']:.2f}"
    print(f"RESULT users={args.users} throughput_ratio={throughput} nomodel_p95_s={last.nomodel_p95():.2f} "
          f"p95_ttft_ratio={ratio:.2f} errors={errors}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()

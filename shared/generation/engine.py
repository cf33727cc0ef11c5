"""The managed local engine: one llama.cpp server process (``engine_server``, on xllamacpp)
with parallel slots and continuous batching, shared by every domain and process that uses
the same state dir. Each domain's GGUF LoRA is loaded into it unapplied and chosen per
request, so three domains cost one copy of the base weights.

Its record, ``<state>/engine/engine.json`` (pid, port, what it serves), lets any process
reuse it; a file lock keeps two processes from starting two. A dead engine is started
again by the next turn that needs it; an engine lacking a newly promoted adapter is
replaced by one serving the old adapters plus the new."""
from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .base import GenerationError
from .process import ManagedServer, alive, healthy, terminate

log = logging.getLogger(__name__)
START_TIMEOUT_S = 120
# generation.wait_policy -> OMP_WAIT_POLICY; "spin-then-sleep" leaves OpenMP's default.
WAIT_POLICIES = {"passive": "PASSIVE", "active": "ACTIVE"}


@dataclass(frozen=True)
class EngineSpec:
    """What an engine process serves and how it runs.

    Args:
        model: the base GGUF file.
        adapters: GGUF LoRA files loaded at start, unapplied; a request names one by index.
        slots: sequences decoded together (llama.cpp's ``n_parallel``).
        context_window: tokens each slot attends to (the server's context is their sum).
        threads: CPU threads for decoding and prefill.
        wait_policy: what its idle OpenMP threads do (``generation.wait_policy``).
        nice: its niceness (``generation.nice``).
    """

    model: str
    adapters: tuple[str, ...] = ()
    slots: int = 4
    context_window: int = 2048
    threads: int = 2
    wait_policy: str = "spin-then-sleep"
    nice: int = 5

    def covers(self, other: "EngineSpec") -> bool:
        """This running engine can answer for ``other`` (same model and shape, its adapters loaded)."""
        return self.shape() == other.shape() and set(other.adapters) <= set(self.adapters)

    def shape(self) -> tuple:
        """Everything but the adapters."""
        return self.model, self.slots, self.context_window, self.threads, self.wait_policy, self.nice

    def including(self, other: "EngineSpec") -> "EngineSpec":
        """``other`` with this engine's adapters kept (those still on disk), so a promotion in
        one domain does not drop another domain's adapter."""
        kept = tuple(a for a in self.adapters if a not in other.adapters and Path(a).is_file())
        return replace(other, adapters=other.adapters + kept)


@dataclass(frozen=True)
class Running:
    """A started engine, as its record describes it."""

    pid: int
    port: int
    spec: EngineSpec

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lora_index(self, adapter: str | None) -> int | None:
        return None if adapter is None else self.spec.adapters.index(adapter)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EngineManager(ManagedServer):
    """Starts, finds, restarts and stops the engine of one state dir."""

    def __init__(self, state_dir: Path):
        super().__init__(state_dir, "engine")

    def running(self) -> Running | None:
        """The recorded engine if its process lives."""
        try:
            data = json.loads(self.record.read_text())
            found = Running(data["pid"], data["port"], EngineSpec(**{**data["spec"],
                                                                      "adapters": tuple(data["spec"]["adapters"])}))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found if alive(found.pid) else None

    def ensure(self, spec: EngineSpec, check_health: bool = False) -> Running:
        """An engine that serves ``spec``: the running one when it covers it, else a new one
        (keeping the old one's adapters); ``check_health`` also replaces one that no longer answers."""
        current = self.running()
        if current and current.spec.covers(spec) and not (check_health and not healthy(current.url)):
            return current
        with self._locked():
            current = self.running()  # another process may have started one meanwhile
            if current and current.spec.covers(spec) and healthy(current.url):
                return current
            wanted = current.spec.including(spec) if current else spec
            if current:
                log.info("restarting the engine (pid %s) to serve %s", current.pid, wanted.adapters or "no adapter")
                self._terminate(current.pid)
            return self._start(wanted)

    def _start(self, spec: EngineSpec) -> Running:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        env["OMP_NUM_THREADS"] = str(spec.threads)
        if spec.wait_policy in WAIT_POLICIES:
            env["OMP_WAIT_POLICY"] = WAIT_POLICIES[spec.wait_policy]
        with open(self.log_file, "ab") as sink:
            # Its own session: Ctrl-C in the terminal that started it does not stop it (like the
            # embedded Postgres, it outlives `up`; `assistants engine stop` stops it).
            proc = subprocess.Popen(
                [sys.executable, "-m", "shared.generation.engine_server", json.dumps(asdict(spec)), str(port)],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                cwd=Path(__file__).resolve().parents[2], preexec_fn=lambda: os.nice(max(0, spec.nice - os.nice(0))))
        started = Running(proc.pid, port, spec)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(started.url, timeout=1):
            if proc.poll() is not None or time.monotonic() > deadline:
                self._terminate(proc.pid)
                raise GenerationError(f"the model engine did not start (exit {proc.poll()}); see {self.log_file}:\n"
                                      + self._log_tail())
            time.sleep(0.2)
        self.record.write_text(json.dumps({"pid": started.pid, "port": port, "spec": asdict(spec)}))
        log.info("engine pid %s on %s: %s slots, adapters %s", started.pid, started.url, spec.slots, spec.adapters)
        return started

    @staticmethod
    def _terminate(pid: int) -> None:
        terminate(pid, grace_s=10.0)

    def status(self) -> dict:
        current = self.running()
        if current is None:
            return {"running": False, "log": str(self.log_file)}
        return {"running": True, "pid": current.pid, "url": current.url, "healthy": healthy(current.url),
                "model": current.spec.model, "adapters": list(current.spec.adapters), "slots": current.spec.slots,
                "threads": current.spec.threads, "log": str(self.log_file)}

"""Background training jobs (migration 0010): a queue in Postgres and one runner that
trains them one at a time, niced and on capped threads, in a child process, while the
chat servers answer. A finished job's adapter goes through the registry's gate; the
servers follow the promotion at their next turn (``serving.PromotedAdapter``)."""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

from ..settings import Settings
from .config import load_finetune_config
from .registry import AdapterRegistry, PromotionRefused

log = logging.getLogger(__name__)
PENDING = ("queued", "running")
FIRST_ADAPTER = "first adapter"
REVIEWED_FEEDBACK = "reviewed feedback"
_COLUMNS = "id, domain, reason, status, step, total_steps, eta_s, version, outcome, error, created_at, finished_at"


@dataclass
class Job:
    id: int
    domain: str
    reason: str
    status: str
    step: int
    total_steps: int | None
    eta_s: float | None
    version: str | None
    outcome: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    def progress(self) -> str:
        """``step 12/60, about 4 min left`` (or what is known of it)."""
        if self.status == "queued":
            return "queued"
        if not self.total_steps:
            return "preparing data and model"
        if self.step >= self.total_steps:
            return f"step {self.step}/{self.total_steps}, evaluating against the base model"
        eta = f", about {max(1, round(self.eta_s / 60))} min left" if self.eta_s is not None else ""
        return f"step {self.step}/{self.total_steps}{eta}"


class JobQueue:
    """The jobs table. Written as the owner (the runner, the CLI, the training child); the
    chat servers only read it, through the application pool."""

    def __init__(self, db):
        self.db = db

    def _one(self, conn, query: str, params: Sequence) -> Job | None:
        row = conn.execute(query, params).fetchone()
        return Job(*row) if row else None

    def add(self, domain: str, reason: str) -> Job:
        """Queue a training of ``domain``; an unfinished job of the domain is returned instead
        of a second one (it will train on the same data, read when it starts)."""
        with self.db.owner_session() as conn:
            job = self._one(conn, f"INSERT INTO training_jobs (domain, reason) VALUES (%s, %s) "
                                  f"ON CONFLICT (domain) WHERE status IN ('queued', 'running') DO NOTHING "
                                  f"RETURNING {_COLUMNS}", (domain, reason))
            return job or self._one(conn, f"SELECT {_COLUMNS} FROM training_jobs WHERE domain = %s "
                                          f"AND status IN ('queued', 'running')", (domain,))

    def get(self, job_id: int) -> Job | None:
        with self.db.owner_session() as conn:
            return self._one(conn, f"SELECT {_COLUMNS} FROM training_jobs WHERE id = %s", (job_id,))

    def listing(self, limit: int = 50) -> list[Job]:
        with self.db.owner_session() as conn:
            return [Job(*r) for r in conn.execute(f"SELECT {_COLUMNS} FROM training_jobs ORDER BY id DESC LIMIT %s",
                                                  (limit,))]

    def pending(self, domain: str) -> Job | None:
        """The domain's queued or running job, read as the chat servers read it."""
        with self.db.session() as conn:
            return self._one(conn, f"SELECT {_COLUMNS} FROM training_jobs WHERE domain = %s "
                                   f"AND status IN ('queued', 'running')", (domain,))

    def history(self, domain: str, reason: str) -> list[Job]:
        with self.db.owner_session() as conn:
            return [Job(*r) for r in conn.execute(f"SELECT {_COLUMNS} FROM training_jobs WHERE domain = %s "
                                                  f"AND reason = %s ORDER BY id", (domain, reason))]

    def claim(self) -> Job | None:
        """The oldest queued job, now running (SKIP LOCKED: two runners never share one)."""
        with self.db.owner_session() as conn:
            return self._one(conn, f"UPDATE training_jobs SET status = 'running', started_at = now(), "
                                   f"updated_at = now() WHERE id = (SELECT id FROM training_jobs WHERE status = "
                                   f"'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {_COLUMNS}", ())

    def requeue_interrupted(self) -> int:
        """Jobs left 'running' by a process that died: queued again, to resume from their
        last checkpoint. Only a runner starting up calls this (one runner per database)."""
        with self.db.owner_session() as conn:
            return conn.execute("UPDATE training_jobs SET status = 'queued', updated_at = now(), eta_s = NULL "
                                "WHERE status = 'running'").rowcount

    def progress(self, job_id: int, step: int, total: int, eta_s: float | None) -> None:
        with self.db.owner_session() as conn:
            conn.execute("UPDATE training_jobs SET step = %s, total_steps = %s, eta_s = %s, updated_at = now() "
                         "WHERE id = %s", (step, total, eta_s, job_id))

    def registered(self, job_id: int, version: str) -> None:
        with self.db.owner_session() as conn:
            conn.execute("UPDATE training_jobs SET version = %s, updated_at = now() WHERE id = %s", (version, job_id))

    def _end(self, job_id: int, status: str, column: str, text: str) -> None:
        with self.db.owner_session() as conn:
            conn.execute(f"UPDATE training_jobs SET status = %s, {column} = %s, eta_s = NULL, finished_at = now(), "
                         f"updated_at = now() WHERE id = %s AND status = 'running'", (status, text, job_id))

    def done(self, job_id: int, outcome: str) -> None:
        self._end(job_id, "done", "outcome", outcome)

    def failed(self, job_id: int, reason: str) -> None:
        self._end(job_id, "failed", "error", reason)

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job (a running one is stopped by its runner within
        ``jobs.poll_s``); False when it is not unfinished."""
        with self.db.owner_session() as conn:
            return conn.execute("UPDATE training_jobs SET status = 'cancelled', eta_s = NULL, finished_at = now(), "
                                "updated_at = now() WHERE id = %s AND status IN ('queued', 'running')",
                                (job_id,)).rowcount == 1


class StepReporter:
    """The training child's progress callback: the step, and an estimate from this
    process's own pace (a resumed run does not count the steps it skipped)."""

    def __init__(self, queue: JobQueue, job_id: int):
        self.queue, self.job_id = queue, job_id
        self._first: tuple[float, int] | None = None

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = (now, step)
        t0, s0 = self._first
        eta = (now - t0) / (step - s0) * (total - step) if step > s0 else None
        self.queue.progress(self.job_id, step, total, eta)


def serving_note(settings: Settings, served_adapter: str | None, db) -> str | None:
    """``base model; adapter medical/v0001 training, step 12/60, about 4 min left`` while a
    job of the domain is unfinished; None otherwise."""
    domain = settings.domain.name
    job = JobQueue(db).pending(domain)
    if job is None:
        return None
    served = f"adapter {served_adapter}" if served_adapter else "base model"
    if job.status == "queued":
        return f"{served}; adapter {domain}/{next_version(settings)} queued for training"
    return f"{served}; adapter {domain}/{next_version(settings)} training, {job.progress()}"


def next_version(settings: Settings) -> str:
    """The version the next registered adapter of the domain will get."""
    return f"v{len(AdapterRegistry(settings.state_dir, settings.domain.name).versions()) + 1:04d}"


def _child_setup(niceness: int) -> None:
    """In the child, before exec: low priority, and ended with the runner's process (a job
    killed with ``up`` is resumed by the next one, not left training unseen)."""
    os.nice(max(0, niceness - os.nice(0)))
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class JobRunner:
    """Trains queued jobs one at a time in child processes (``command(job)`` builds the
    command line), promotes each through the gate and records the outcome. ``show`` gets
    one line of progress at every poll."""

    def __init__(self, queue: JobQueue, settings_of: Callable[[str], Settings],
                 command: Callable[[Job, Settings], list[str]], log_file: Path, poll_s: float,
                 show: Callable[[Job], None] = lambda job: None):
        self.queue, self.settings_of, self.command = queue, settings_of, command
        self.log_file, self.poll_s, self.show = Path(log_file), poll_s, show
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        requeued = self.queue.requeue_interrupted()
        if requeued:
            log.info("%d interrupted training job(s) queued again, to resume from their checkpoints", requeued)
        self._thread = threading.Thread(target=self.run, name="training-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def run(self) -> None:
        while not self._stop.is_set():
            job = self.queue.claim()
            if job is None:
                self._stop.wait(self.poll_s)
                continue
            try:
                self.run_one(job)
            except Exception as e:  # noqa: BLE001 - the runner outlives one bad job, which says why
                log.exception("training job %s failed", job.id)
                self.queue.failed(job.id, f"{type(e).__name__}: {e}")

    def run_one(self, job: Job) -> Job:
        """Train ``job`` to its end (or its cancellation); returns it as recorded."""
        settings = self.settings_of(job.domain)
        env = {**os.environ, **{v: str(settings.jobs.threads) for v in
                                ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        start = self.log_file.stat().st_size if self.log_file.is_file() else 0
        with open(self.log_file, "ab") as sink:
            child = subprocess.Popen(self.command(job, settings), stdout=sink, stderr=subprocess.STDOUT, env=env,
                                     preexec_fn=lambda: _child_setup(settings.jobs.nice))
            while child.poll() is None:
                self._stop.wait(self.poll_s)
                now = self.queue.get(job.id)
                if now.status == "cancelled" or self._stop.is_set():
                    child.terminate()
                    child.wait()
                    return now  # a stopped runner leaves it 'running': the next one resumes it
                self.show(now)
        if child.returncode != 0:
            self.queue.failed(job.id, self._error_in_log(start) or f"exit status {child.returncode}")
        else:
            self.queue.done(job.id, self._promote(settings, self.queue.get(job.id).version))
        job = self.queue.get(job.id)
        self.show(job)
        return job

    def _error_in_log(self, start: int, lines: int = 15) -> str:
        """The child's last lines (its traceback) from where this job's output began."""
        with open(self.log_file, "rb") as f:
            f.seek(start)
            tail = f.read().decode("utf-8", "replace").strip().splitlines()
        return "\n".join(tail[-lines:])

    @staticmethod
    def _promote(settings: Settings, version: str | None) -> str:
        if version is None:
            return "no adapter was registered"
        from .serving import check_base

        registry = AdapterRegistry(settings.state_dir, settings.domain.name)
        try:
            check_base(registry.get(version), settings.generation.model)
            return registry.promote(version, load_finetune_config(settings.domain.root).metric)
        except PromotionRefused as e:
            return str(e)

"""Background training jobs: the queue in Postgres (queued, running with its step, done,
failed with the reason, cancelled), `assistants jobs`, a real training job that a stopped
runner leaves behind and the next runner resumes from its checkpoint, promoted through the
gate and picked up by a server already running; and `assistants up` serving all three UIs
while an adapter still trains."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from assistants.domains import settings_for
from shared.finetune.jobs import JobQueue, JobRunner, serving_note

from .adapters import promotion_restored
from .servers import free_port
from .test_cli import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def queue(db):
    return JobQueue(db)


def settings_named(name: str):
    """The medical settings under another domain name: a queue of its own in the shared database."""
    s = settings_for("medical")
    return s.model_copy(update={"domain": s.domain.model_copy(update={"name": name})})


def test_job_states_and_the_serving_note(queue, db):
    domain = "t" + uuid.uuid4().hex[:10]
    job = queue.add(domain, "first adapter")
    assert job.status == "queued" and job.step == 0
    assert queue.add(domain, "reviewed feedback").id == job.id, "one unfinished job per domain"
    settings = settings_named(domain)
    assert serving_note(settings, None, db) == f"base model; adapter {domain}/v0001 queued for training"
    while (claimed := queue.claim()).id != job.id:  # jobs other tests left queued are not this one's business
        queue.cancel(claimed.id)
    assert claimed.status == "running"
    assert serving_note(settings, None, db).endswith("training, preparing data and model")
    queue.progress(job.id, 12, 60, 240.0)
    assert serving_note(settings, None, db) == f"base model; adapter {domain}/v0001 training, step 12/60, about 4 min left"
    assert serving_note(settings, f"{domain}/v0003 (adapter.gguf@abc)", db).startswith(f"adapter {domain}/v0003")
    queue.registered(job.id, "v0001")
    queue.done(job.id, "v0001 promoted: val_loss 1.0 < 2.0 (the base model)")
    done = queue.get(job.id)
    assert (done.status, done.version, done.step, done.total_steps) == ("done", "v0001", 12, 60)
    assert done.finished_at is not None and "promoted" in done.outcome
    assert serving_note(settings, None, db) is None, "nothing trains: nothing to say"
    assert queue.cancel(job.id) is False, "a finished job cannot be cancelled"

    again = queue.add(domain, "reviewed feedback")
    assert again.id != job.id
    while (claimed := queue.claim()).id != again.id:
        queue.cancel(claimed.id)
    assert queue.requeue_interrupted() >= 1 and queue.get(again.id).status == "queued", "a killed job is queued again"
    while (claimed := queue.claim()).id != again.id:
        queue.cancel(claimed.id)
    queue.failed(again.id, "Traceback (most recent call last):\n...\nValueError: no training rows")
    failed = queue.get(again.id)
    assert failed.status == "failed" and failed.error.endswith("ValueError: no training rows")


def test_jobs_command_lists_and_cancels(queue):
    domain = "t" + uuid.uuid4().hex[:10]
    job = queue.add(domain, "first adapter")
    listing = run("jobs", "list")
    assert listing.returncode == 0, listing.stderr
    assert any(line.split()[:3] == [str(job.id), domain, "queued"] for line in listing.stdout.splitlines()), listing.stdout
    cancelled = run("jobs", "cancel", str(job.id))
    assert cancelled.returncode == 0 and f"job {job.id} cancelled" in cancelled.stdout
    assert queue.get(job.id).status == "cancelled"
    again = run("jobs", "cancel", str(job.id))
    assert again.returncode == 1 and "not queued or running" in again.stderr
    assert run("jobs", "cancel", "medical").returncode == 2, "cancel takes a job id"


def test_a_reviewer_queues_a_training(queue):
    out = run("review", "medical", "--train")
    assert out.returncode == 0, out.stderr
    job_id = int(out.stdout.split("training job ")[1].split()[0])
    job = queue.get(job_id)
    assert (job.domain, job.reason, job.status) == ("medical", "reviewed feedback", "queued")
    queue.cancel(job_id)  # no runner in this test


def _tiny_training(tmp_path: Path) -> Path:
    """The sample Q&A alone, a small LoRA, a checkpoint every step: minutes on a busy CPU."""
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"sources": [{"path": str(ROOT / "medical/train_data/sample_qa.jsonl"), "group": "focus"}],
                 "val_fraction": 0.2, "augment": False},
        "lora": {"r": 4, "alpha": 8},
        "train": {"max_steps": 4, "batch_size": 2, "max_seq_length": 192, "learning_rate": 1.0e-3,
                  "eval_steps": 4, "save_steps": 1, "warmup_steps": 0},
    }))
    return config


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)
    return found


@pytest.fixture
def medical_pointer(state_dir):
    """Put the session's medical promotion back afterwards (other tests' gates)."""
    with promotion_restored(state_dir) as reg:
        yield reg


@pytest.mark.slow
def test_a_stopped_job_resumes_from_its_checkpoint_and_a_running_server_switches(queue, medical_pointer, tmp_path):
    from shared.finetune.serving import PromotedAdapter

    reg = medical_pointer
    reg.root.mkdir(parents=True, exist_ok=True)
    (reg.root / "promoted.json").unlink(missing_ok=True)  # the base model serves, as on a first run
    served = PromotedAdapter(settings_for("medical"))  # what a running server holds
    assert served.current().describe()["adapter"] is None
    config = _tiny_training(tmp_path)

    def command(job, settings):
        return [sys.executable, "-m", "assistants.cli", "train", job.domain, "--resume", "--quiet", "--job",
                str(job.id), "--config", str(config)]

    job = queue.add("medical", "first adapter")
    log = tmp_path / "training.log"
    first = JobRunner(queue, settings_for, command, log, poll_s=0.5)
    while (claimed := queue.claim()).id != job.id:
        queue.cancel(claimed.id)
    worker = threading.Thread(target=first.run_one, args=(claimed,))
    worker.start()
    _wait(lambda: queue.get(job.id).step >= 2 or queue.get(job.id).status != "running", 1800, "two training steps")
    running = queue.get(job.id)
    assert running.status == "running" and running.total_steps == 4, log.read_text()[-3000:]
    first.stop()  # as when `up` ends: the child is stopped, the job left for the next runner
    worker.join(timeout=60)
    assert not worker.is_alive() and queue.get(job.id).status == "running"

    second = JobRunner(queue, settings_for, command, log, poll_s=0.5)
    second.start()
    try:
        finished = _wait(lambda: (j := queue.get(job.id)).status not in ("queued", "running") and j, 1800, "the job")
    finally:
        second.stop()
    assert finished.status == "done", log.read_text()[-3000:]
    adapter = reg.get(finished.version)
    assert "checkpoint-" in (adapter.manifest["resumed_from"] or ""), "resumed from its checkpoint, not from scratch"
    assert adapter.manifest["metrics"]["steps"] == 4
    assert finished.outcome.startswith(f"{finished.version} promoted"), finished.outcome
    assert served.current().describe()["adapter"].startswith(f"medical/{finished.version}"), "switched at the next turn"


@pytest.mark.slow
def test_up_serves_all_three_while_the_first_adapter_trains(tmp_path):
    """A first run on an empty state dir: every UI answers while medical's adapter is still
    queued or training; the job shows in /readyz and `assistants jobs`, and cancelling it
    stops the training without stopping the servers."""
    from gradio_client import Client

    state = tmp_path / "state"
    env = {**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
           "ASSISTANTS_STATE_DIR": str(state), "ASSISTANTS_JOBS__POLL_S": "0.5"}
    base = free_port()
    while any(_busy(p) for p in (base, base + 1, base + 2)):
        base = free_port()
    out = tmp_path / "up.log"
    with open(out, "wb") as sink:
        up = subprocess.Popen([sys.executable, "-m", "assistants.cli", "up", "--port-base", str(base)],
                              stdout=sink, stderr=sink, env=env)
    try:
        urls = {d: f"http://127.0.0.1:{base + i}" for i, d in enumerate(("finance", "medical", "legal"))}

        def ready():
            try:
                return all(httpx.get(u + "/readyz", timeout=5).status_code == 200 for u in urls.values())
            except httpx.HTTPError:
                assert up.poll() is None, out.read_text()[-3000:]
                return False

        _wait(ready, 600, "three ready UIs")
        report = httpx.get(urls["medical"] + "/readyz").json()
        assert report["adapter"] is None and report["training"].startswith("base model; adapter medical/v0001 "), report
        turn = Client(urls["medical"], verbose=False, download_files=False).predict(
            "What does hypertension mean?", "", api_name="/ask")
        assert turn["answer"].strip() and turn["generator"]["adapter"] is None
        terminal = out.read_text()
        for stage in ("database ready", "[medical] corpus ingested:", "new,", "sign in: demo logins alice",
                      f"http://127.0.0.1:{base + 2}/", "training jobs run in the background"):
            assert stage in terminal, terminal
        assert "Warning" not in terminal and "warn(" not in terminal, "third-party noise goes to the log file"
        assert (state / "logs" / "up.log").is_file()

        jobs = run("jobs", "list", env={"ASSISTANTS_STATE_DIR": str(state)})
        medical = next(line for line in jobs.stdout.splitlines() if line.split()[1] == "medical")
        assert medical.split()[2] in ("queued", "running"), jobs.stdout
        for line in jobs.stdout.splitlines():  # legal's too: nothing trains on after this test
            if line.split()[2] in ("queued", "running"):
                assert run("jobs", "cancel", line.split()[0], env={"ASSISTANTS_STATE_DIR": str(state)}).returncode == 0
        _wait(lambda: httpx.get(urls["medical"] + "/readyz").json().get("training") is None, 60, "the cancellation")
        assert up.poll() is None, "cancelling a job leaves the servers serving"
    finally:
        up.terminate()
        up.wait(timeout=60)
        from shared.db import embedded

        embedded.stop(state / "pg")


def _busy(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_progress_is_one_updating_line_on_a_terminal():
    import io
    from datetime import datetime, timezone

    from assistants.jobs_cli import ProgressLine
    from shared.finetune.jobs import Job

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def job(status: str, step: int) -> Job:
        return Job(7, "medical", "first adapter", status, step, 60, 240.0 if status == "running" else None,
                   "v0001" if status == "done" else None, "v0001 promoted" if status == "done" else None, None,
                   datetime.now(timezone.utc), None)

    screen = Terminal()
    show = ProgressLine(screen)
    for j in (job("running", 11), job("running", 12), job("running", 12), job("done", 60)):
        show(j)
    out = screen.getvalue()
    assert out.count("\r\x1b[K") == 3, "a repeated state is not redrawn"
    assert out.count("\n") == 1 and out.endswith("v0001 promoted\n"), "the line ends when the job does"
    assert "step 12/60, about 4 min left" in out

    log = io.StringIO()  # not a terminal: a line per change of state, and a failure in full
    failed = job("failed", 3)
    failed.error = "Traceback (most recent call last):\n  File x\nValueError: no training rows"
    ProgressLine(log)(failed)
    assert log.getvalue().splitlines()[0].endswith("ValueError: no training rows")
    assert "    Traceback (most recent call last):\n    " in log.getvalue()

"""Faults while serving: the finance assistant runs as its own process (`assistants serve`)
with generation behind the `openai` backend, so the test can take the model server away,
make it hang, and bring it back, and can restart Postgres under it. Each failed turn must
say why in the chat, the app must stay up, the next turn must work without restarting it,
and nothing recorded before may be lost. Its log must hold no message text."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import yaml

from assistants.domains import settings_for
from shared.finetune import AdapterRegistry

from .servers import free_port, running
from .test_cli import run
from .test_ui import chromium_page, requires_chromium, sign_in, settled_text

ROOT = Path(__file__).resolve().parents[1]
LOGIN = ("alice", "alice-demo-pass")
# Long enough for a real first token on two busy cores, short enough to wait for once.
TIMEOUT_S = 20


class ModelServer:
    """Whatever listens on the port the app's `openai` backend calls: nothing, a socket that
    accepts and never answers, or a real llama.cpp OpenAI-compatible server."""

    def __init__(self, stack: ExitStack, log_dir: Path):
        self.port, self.stack, self.log_dir = free_port(), stack, log_dir
        self.real = False
        self._hang: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def hang(self) -> None:
        self._hang = socket.create_server(("127.0.0.1", self.port))

        def hold() -> None:
            held = []  # accepted and never answered
            try:
                while True:
                    held.append(self._hang.accept())
            except OSError:  # closed: the real server takes the port
                pass

        threading.Thread(target=hold, daemon=True).start()

    def start_real(self) -> None:
        if self.real:
            return
        if self._hang is not None:
            self._hang.close()
        from shared.generation.models import bundled_gguf

        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", "2048", "--seed", "0"]
        self.stack.enter_context(running(cmd, f"{self.url}/models", self.log_dir / "llama-server.log"))
        self.real = True


@pytest.fixture(scope="module")
def deployment(ingested, tmp_path_factory):
    """(app URL, its log file, the model server it calls)."""
    logs = tmp_path_factory.mktemp("faults")
    with ExitStack() as stack:
        model = ModelServer(stack, logs)
        env = {**os.environ, "ASSISTANTS_GENERATION__BACKEND": "openai", "ASSISTANTS_GENERATION__BASE_URL": model.url,
               "ASSISTANTS_GENERATION__REQUEST_TIMEOUT_S": str(TIMEOUT_S), "ASSISTANTS_GENERATION__ADAPTER": "",
               "ASSISTANTS_DATABASE__CONNECT_TIMEOUT_S": "3"}
        env.pop("ASSISTANTS_LOG_CONTENT", None)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = logs / "serve.log"
        stack.enter_context(running([sys.executable, "-m", "assistants.cli", "serve", "finance", "--port", str(port)],
                                    f"{url}/healthz", log, env=env))
        yield url, log, model


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, auth=LOGIN)


def messages_of(db, conversation_id: str) -> list[tuple]:
    with db.owner_session() as conn:
        return conn.execute("SELECT role, content, error FROM messages WHERE conversation_id = %s ORDER BY created_at",
                            (conversation_id,)).fetchall()


@requires_chromium
def test_model_backend_down_or_hanging_is_an_error_in_the_chat_and_the_app_stays_up(deployment, db):
    from playwright.sync_api import expect

    url, _, model = deployment
    with pytest.raises(Exception, match="cannot reach the generation endpoint"):
        client(url).predict("Zebrafinch: how large should an emergency fund be?", None, api_name="/ask")
    model.hang()
    question = "Zebrafinch: what is the 401(k) employee contribution limit for 2026?"
    with chromium_page("faults-backend-timeout.png") as page:
        sign_in(page, url, *LOGIN)
        page.locator("#question textarea").fill(question)
        page.locator("#send").click()
        chat = page.locator("#chat")
        expect(chat).to_contain_text("Error:", timeout=60_000)
        expect(chat).to_contain_text(f"did not answer within {TIMEOUT_S} s")
        assert page.locator("#question textarea").input_value() == question, "the question stays for a retry"
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        model.start_real()
        page.locator("#send").click()
        expect(page.locator("#chat .user-row")).to_have_count(2, timeout=30_000)
        answer = settled_text(page.locator("#chat .bot-row").last)
        assert answer and "Error:" not in answer, "the same app answers once the model is back"
    with db.owner_session() as conn:
        failed = conn.execute("SELECT count(*) FROM messages WHERE principal = 'alice' AND error LIKE %s",
                              (f"%did not answer within {TIMEOUT_S} s%",)).fetchone()[0]
    assert failed >= 1, "the failed turn is recorded with its error"


def test_database_restart_fails_one_turn_clearly_then_the_same_app_goes_on(deployment, db):
    url, _, model = deployment
    model.start_real()
    alice = client(url)
    first = alice.predict("Zebrafinch: how large should an emergency fund be?", None, api_name="/ask")
    cid = first["conversation_id"]
    assert run("db", "stop").returncode == 0
    try:
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 503 and "database" in ready.json()["database"]
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200, "liveness holds while the database is down"
        with pytest.raises(Exception, match="database"):
            alice.predict("Zebrafinch: and where should I keep it?", cid, api_name="/ask")
    finally:
        assert run("db", "start").returncode == 0
    follow = alice.predict("Zebrafinch: and where should I keep it?", cid, api_name="/ask")
    assert follow["conversation_id"] == cid and follow["answer"]
    assert "emergency fund" in follow["retrieval_query"], "the turn before the restart is still the history"
    rows = messages_of(db, cid)
    assert [r[0] for r in rows] == ["user", "assistant", "user", "assistant"]
    assert rows[0][1] == "Zebrafinch: how large should an emergency fund be?" and rows[1][1] == first["answer"]
    assert httpx.get(f"{url}/readyz", timeout=10).json()["ready"] is True


def test_the_served_log_holds_no_message_text(deployment):
    _, log, _ = deployment
    # The start-up line names the deployment's demo logins (its own configuration, shown on
    # purpose); nothing a user typed or signed in with may appear anywhere else.
    text = log.read_text(errors="replace").replace(settings_for("finance").ui.login_hint or "", "")
    assert "turn domain=finance" in text, "turns are logged"
    assert "Zebrafinch" not in text and "alice" not in text, text[-2000:]


@pytest.mark.slow
def test_killed_ingestion_and_training_both_resume(tmp_path, state_dir, db):
    """One combined fault test, as a power cut would do it: an ingestion run and a training
    run (Unsloth's CPU backend) are SIGKILLed at the same moment, midway; started again,
    ingestion finishes with nothing lost or duplicated, and training resumes from its last
    checkpoint, registers the adapter with its data card, and gated promotion applies."""
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"sources": [{"path": str(ROOT / "medical" / "train_data" / "sample_qa.jsonl"), "group": "focus"}],
                 "val_fraction": 0.2},
        "lora": {"r": 8, "alpha": 16},
        "train": {"max_steps": 6, "batch_size": 2, "max_seq_length": 256, "eval_steps": 2, "save_steps": 2,
                  "logging_steps": 1, "learning_rate": 5e-4},
    }))
    corpus, n_docs, owner = tmp_path / "bulk", 40, "killtest"
    corpus.mkdir()
    for i in range(n_docs):
        (corpus / f"doc{i:02d}.txt").write_text(f"Document {i}. " + f"Paragraph about topic {i} and its clauses. " * 60)
    env = {**os.environ, "ASSISTANTS_INGEST__WRITE_BATCH_CHUNKS": "1"}
    train_cmd = [sys.executable, "-m", "assistants.cli", "train", "medical", "--config", str(config), "--quiet"]
    ingest_cmd = [sys.executable, "-m", "assistants.cli", "ingest", "finance", str(corpus), "--principal", owner, "--quiet"]
    runs = state_dir / "finetune" / "medical"
    before = set(runs.glob("run-*")) if runs.exists() else set()

    def committed() -> int:
        with db.session(owner) as conn:
            return conn.execute("SELECT count(*) FROM documents WHERE collection = 'finance' AND owner = %s",
                                (owner,)).fetchone()[0]

    train_log, ingest_log = tmp_path / "train.log", tmp_path / "ingest.log"
    with open(train_log, "wb") as t_sink, open(ingest_log, "wb") as i_sink:
        trainer = subprocess.Popen(train_cmd, stdout=t_sink, stderr=subprocess.STDOUT, env=env)
        ingester = subprocess.Popen(ingest_cmd, stdout=i_sink, stderr=subprocess.STDOUT, env=env)
    # Each is frozen (SIGSTOP) the moment it is midway, then both die together: a power cut
    # at a known point, whichever of them runs faster on the machine.
    midway = {trainer: lambda: list(runs.glob("run-*/checkpoints/checkpoint-2/trainer_state.json")),
              ingester: lambda: committed() >= 3}
    logs = {trainer: train_log, ingester: ingest_log}
    deadline = time.time() + 900
    while midway:
        for proc, reached in list(midway.items()):
            assert proc.poll() is None, "ended before it was midway:\n" + logs[proc].read_text()[-3000:]
            if reached():
                proc.send_signal(signal.SIGSTOP)
                del midway[proc]
        assert time.time() < deadline, "not midway within 15 minutes"
        time.sleep(0.05)
    for proc in (ingester, trainer):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    at_kill = committed()
    assert 0 < at_kill < n_docs, f"the kill should land midway (committed {at_kill})"
    (run_dir,) = set(runs.glob("run-*")) - before
    assert not (run_dir / "registered.json").exists()

    out = subprocess.run(ingest_cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert f"{n_docs - at_kill} new" in out.stdout and f"{at_kill} unchanged" in out.stdout
    with db.session(owner) as conn:
        docs, expected = conn.execute("SELECT count(*), sum(n_chunks) FROM documents WHERE collection = 'finance'"
                                      " AND owner = %s", (owner,)).fetchone()
        chunks, distinct = conn.execute("SELECT count(*), count(DISTINCT node_id) FROM chunks"
                                        " WHERE collection = 'finance' AND owner = %s", (owner,)).fetchone()
    assert docs == n_docs and chunks == distinct == expected

    resumed = run("train", "medical", "--resume", "--config", str(config), "--quiet", timeout=1800)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "registered adapter" in resumed.stdout
    version = json.loads((run_dir / "registered.json").read_text())["version"]
    manifest = json.loads(run("adapters", "show", "medical", version).stdout)
    # The newest checkpoint at the kill: checkpoint-2, or a later one written meanwhile.
    resumed_from = Path(manifest["resumed_from"])
    assert resumed_from.parent == run_dir / "checkpoints" and resumed_from.name.startswith("checkpoint-")
    assert manifest["metrics"]["steps"] == 6 and manifest["engine"] == "unsloth"
    assert manifest["base_model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf@") and len(manifest["base_model_sha256"]) == 64
    assert manifest["data_card"]["split_sizes"]["validation"] > 0 and len(manifest["dataset_hash"]) == 64
    assert (state_dir / "adapters" / "medical" / version / "adapter" / "adapter_config.json").is_file()
    assert (state_dir / "adapters" / "medical" / version / "adapter.gguf").is_file()
    assert (run_dir / "data_card.md").read_text().startswith("# Data card")

    current = AdapterRegistry(state_dir, "medical").promoted()
    bar = current.metric("val_loss") if current else manifest["metrics"]["base_val_loss"]
    promote = run("adapters", "promote", "medical", version)
    if manifest["metrics"]["val_loss"] < bar:
        assert promote.returncode == 0 and "promoted" in promote.stdout
        assert "* " + version in run("adapters", "list", "medical").stdout
    else:
        assert promote.returncode == 1 and "does not beat" in promote.stderr

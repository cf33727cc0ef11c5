"""The path beyond one machine, tested with the real parts that run here: one base model
serving several LoRA adapters selected per request through the `openai` backend (a
llama.cpp server standing in for vLLM), retrieval from a real streaming replica of
Postgres, and two app replicas sharing one database and one conversation."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from .adapters import random_lora
from .servers import free_port, running

PROMPT = [{"role": "user", "content": "Name three symptoms of the flu."}]


def test_one_base_model_serves_each_domains_adapter_per_request(tmp_path, state_dir):
    """Each domain names its adapter; the server applies it per request. What comes back
    through the `openai` backend is what that adapter gives when loaded locally."""
    from shared.generation import create_generator
    from shared.generation.models import bundled_gguf
    from shared.settings import GenerationSettings

    adapters = {name: random_lora(state_dir, tmp_path / name, seed=seed)[1] for name, seed in (("medical", 1), ("legal", 2))}
    base = str(bundled_gguf())
    config = tmp_path / "models.yaml"
    config.write_text(yaml.safe_dump({"host": "127.0.0.1", "port": free_port(), "models": [
        {"model": base, "model_alias": "base", "n_ctx": 1024, "seed": 0},
        *({"model": base, "model_alias": name, "lora_path": str(path), "n_ctx": 1024, "seed": 0}
          for name, path in adapters.items())]}))
    port = yaml.safe_load(config.read_text())["port"]
    url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
    with running(cmd, f"{url}/models", tmp_path / "server.log"):
        served = {name: create_generator(GenerationSettings(backend="openai", base_url=url, adapter=name, max_new_tokens=24),
                                         state_dir).generate(PROMPT)
                  for name in ("base", "medical", "legal")}
    local = {name: create_generator(GenerationSettings(backend="llamacpp", adapter=str(path), merge_adapter=False,
                                                       max_new_tokens=24), state_dir).generate(PROMPT)
             for name, path in adapters.items()}
    assert len(set(served.values())) == 3, f"each adapter must change the answer: {served}"
    for name in adapters:
        assert served[name] == local[name], f"{name}: served {served[name]!r} vs local {local[name]!r}"


@contextmanager
def streaming_replica(db) -> Iterator[str]:
    """A hot standby of the embedded primary (pg_basebackup + streaming replication, with
    the server binaries of the pgserver wheel); yields its connection URL."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from pgserver._commands import pg_basebackup, pg_ctl

    primary = conninfo_to_dict(db.admin_url)
    user = "pgserver" if os.geteuid() == 0 else None  # as root the wheel runs postgres as its own user
    parent = Path(tempfile.mkdtemp(prefix="replica-"))
    if user:
        shutil.chown(parent, user)
    data = parent / "pg"
    try:
        pg_basebackup(["-D", str(data), "-R", "-X", "stream", "-h", primary["host"], "-U", primary["user"]], user=user)
        for lock in data.glob(".s.PGSQL.*"):  # the primary's socket lock, copied with its data dir
            lock.unlink()
        pg_ctl(["-w", "-l", str(data / "server.log"), "-o", f"-h '' -k {data} -c shared_preload_libraries=pg_textsearch",
                "start"], pgdata=data, user=user)
        try:
            yield make_conninfo(db.admin_url, host=str(data))
        finally:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data, user=user)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _on_replica(db, principal: str) -> bool:
    """Whether a read session for ``principal`` would be served by the replica now."""
    with db.read_session(principal) as conn:
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]


def test_retrieval_reads_from_a_streaming_replica_and_sees_its_own_writes(settings, embedding, collection, tmp_path):
    import psycopg

    from shared.db import Database
    from shared.ingest import Ingestor
    from shared.store import PgVectorStore

    # An embedded primary of its own: a base backup copies the whole cluster, and the run's
    # shared one holds every corpus by now (minutes to copy instead of seconds).
    state = settings.state_dir if settings.database.url else tmp_path / "primary"
    primary = Database(settings.database, state_dir=state, embedding_dim=settings.embedding.dim).open()
    try:
        with streaming_replica(primary) as replica_url:
            cfg = settings.database.model_copy(update={"read_url": replica_url})
            with Database(cfg, state_dir=state, embedding_dim=settings.embedding.dim) as db:
                store = PgVectorStore(db, collection, settings.retrieval)

                def ingest(name: str, text: str) -> None:
                    (tmp_path / name).write_text(text)
                    Ingestor(store, embedding, settings.chunking, settings.ingest, principal="rita").run(
                        [tmp_path / name], progress=False)

                def found(query: str) -> list[str]:
                    from llama_index.core.vector_stores.types import VectorStoreQuery

                    q = VectorStoreQuery(query_str=query, query_embedding=embedding.get_query_embedding(query), similarity_top_k=3)
                    return [n.metadata.get("title") for n in store.query(q, principal="rita").nodes]

                ingest("osprey.md", "# Osprey fund notice\nThe Osprey fund closes to new investors on 1 March.")
                deadline = time.time() + 30
                while not _on_replica(db, "rita"):  # the replica catches up with the write
                    assert time.time() < deadline, "the replica never caught up"
                    time.sleep(0.2)
                assert "Osprey fund notice" in found("When does the Osprey fund close?")

                with psycopg.connect(replica_url, autocommit=True) as admin:
                    admin.execute("SELECT pg_wal_replay_pause()")
                    ingest("heron.md", "# Heron bond notice\nThe Heron bond pays its coupon every June.")
                    assert not _on_replica(db, "rita"), "a replica behind this process's write must not answer"
                    assert "Heron bond notice" in found("When does the Heron bond pay?"), "read-your-writes"
                    admin.execute("SELECT pg_wal_replay_resume()")
                deadline = time.time() + 30
                while not _on_replica(db, "rita"):
                    assert time.time() < deadline, "the replica never resumed"
                    time.sleep(0.2)
                assert "Heron bond notice" in found("When does the Heron bond pay?")
    finally:
        if state == settings.state_dir:
            primary.close()
        else:
            primary.stop_embedded()


def test_app_replicas_share_the_database_and_continue_one_conversation(db, ingested, tmp_path):
    """Two `assistants serve finance` processes, as behind a round-robin load balancer: one
    conversation alternates between them and is recorded once, in order."""
    from gradio_client import Client

    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with running([sys.executable, "-m", "assistants.cli", "serve", "finance", "--port", str(ports[0])],
                 f"{urls[0]}/readyz", tmp_path / "a.log", env={**os.environ}), \
            running([sys.executable, "-m", "assistants.cli", "serve", "finance", "--port", str(ports[1])],
                    f"{urls[1]}/readyz", tmp_path / "b.log", env={**os.environ}):
        clients = [Client(u, verbose=False, auth=("erin", "erin-demo-pass")) for u in urls]
        questions = ["How large should an emergency fund be?", "And where should I keep it?",
                     "Why does diversification matter?", "What is the 2026 IRA contribution limit?"]
        cid, turns = None, []
        for i, q in enumerate(questions):
            turns.append(clients[i % 2].predict(q, cid, api_name="/ask"))
            cid = cid or turns[0]["conversation_id"]
            assert turns[-1]["conversation_id"] == cid
    assert "emergency fund" in turns[1]["retrieval_query"], "replica B read the turn replica A recorded"
    for log in ("a.log", "b.log"):
        assert "this machine only" in (tmp_path / log).read_text(), "the server says it binds to localhost"
    with db.owner_session() as conn:
        rows = conn.execute("SELECT role, content, principal FROM messages WHERE conversation_id = %s ORDER BY created_at",
                            (cid,)).fetchall()
    assert [r[1] for r in rows if r[0] == "user"] == questions
    assert [r[1] for r in rows if r[0] == "assistant"] == [t["answer"] for t in turns] and {r[2] for r in rows} == {"erin"}

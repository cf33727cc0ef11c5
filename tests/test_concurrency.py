"""Serving many users at once (issue 20): the `openai` backend streams several turns at once
from a model server with several slots; a full bound fails at once as busy (HTTP 429 in the
/v1 API); a closed stream frees its slot; turns that need no model are answered while a
generation holds every slot. Real llama.cpp servers (one slot each) behind a real HTTP load
balancer stand in for a server with several slots."""
from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from shared.generation import GeneratorBusy, create_generator
from shared.generation.models import bundled_gguf
from shared.settings import GenerationSettings

from .servers import free_port, round_robin, running
from .test_cli import run

SLOTS = 3
LONG = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea, in many sentences."}]


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    """SLOTS llama.cpp servers, one thread each, behind a round-robin balancer: its /v1 URL."""
    logs = tmp_path_factory.mktemp("slots")
    with ExitStack() as stack:
        upstreams = []
        for i in range(SLOTS):
            port = free_port()
            cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
                   "--port", str(port), "--n_ctx", "1024", "--seed", "0", "--n_threads", "1"]
            stack.enter_context(running(cmd, f"http://127.0.0.1:{port}/v1/models", logs / f"llama-{i}.log",
                                        env={**os.environ, "OMP_NUM_THREADS": "1"}))
            upstreams.append(f"http://127.0.0.1:{port}/v1")
        yield stack.enter_context(round_robin([u.removesuffix("/v1") for u in upstreams], free_port()))


def generator(url: str, tmp_path, **kw):
    return create_generator(GenerationSettings(backend="openai", base_url=url, max_new_tokens=64, **kw), tmp_path)


def test_turns_stream_at_the_same_time(model_server, tmp_path):
    """Every stream gives its first token while all the others are open and unfinished: served one
    after the other behind a lock, the second `next` would wait for the first stream to end. No
    timings are compared, so a slow prefill on busy cores cannot make this flaky."""
    gen = generator(model_server, tmp_path, max_concurrency=SLOTS)
    streams = [gen.stream([{"role": "user", "content": f"Count slowly from 1 to 60, one number per line ({i})."}],
                          max_tokens=40) for i in range(SLOTS)]
    with ThreadPoolExecutor(1) as pool:
        firsts = [pool.submit(next, s).result(timeout=300) for s in streams]
        assert all(firsts)
        rests = [pool.submit(list, s).result(timeout=600) for s in streams]
    assert all(len(rest) >= 9 for rest in rests)


def test_busy_at_once_when_full_and_a_closed_stream_frees_its_slot(model_server, tmp_path):
    gen = generator(model_server, tmp_path, max_concurrency=1, max_queue=0)
    first = gen.stream(LONG, max_tokens=200)
    assert next(first)
    with pytest.raises(GeneratorBusy, match="busy answering other questions; try again in a moment"):
        next(gen.stream(LONG))
    first.close()  # the user pressed stop: the slot and the model server's request end
    assert gen.generate(LONG, max_tokens=4)
    queued = generator(model_server, tmp_path, max_concurrency=1, max_queue=1, queue_timeout_s=0.5)
    holder = queued.stream(LONG, max_tokens=200)
    next(holder)
    with pytest.raises(GeneratorBusy):  # waited in the queue, at most queue_timeout_s, then gave up
        next(queued.stream(LONG))
    holder.close()


def test_an_escalation_is_streamed_while_a_long_generation_holds_the_slot(model_server, tmp_path, db):
    from assistants.domains import settings_for
    from shared.runtime import Runtime

    gen = generator(model_server, tmp_path, max_concurrency=1, max_queue=1, queue_timeout_s=300)
    engine = Runtime(settings_for("medical"), db=db).chat_engine(gen)
    long = gen.stream(LONG, max_tokens=200)
    next(long)  # another user's generation holds the only slot
    events = engine.stream("I have crushing chest pain and my left arm hurts", principal="t-concurrency")
    first = next(events)
    assert first.kind == "token" and "heart attack" in first.text  # before any model, while the slot is taken
    long.close()
    turn = [e for e in events if e.kind == "done"][0].turn
    assert turn.answer.startswith(first.text) and turn.usage["rules"][0] == "cardiac"


@pytest.fixture(scope="module")
def busy_finance(model_server, ingested, tmp_path_factory):
    """`assistants serve finance` on the openai backend with one slot and no queue."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "ASSISTANTS_GENERATION__BACKEND": "openai", "ASSISTANTS_GENERATION__BASE_URL": model_server,
           "ASSISTANTS_GENERATION__MAX_CONCURRENCY": "1", "ASSISTANTS_GENERATION__MAX_QUEUE": "0",
           "ASSISTANTS_GENERATION__MAX_NEW_TOKENS": "256"}
    with running([sys.executable, "-m", "assistants.cli", "serve", "finance", "--port", str(port)], f"{url}/healthz",
                 tmp_path_factory.mktemp("busy") / "serve.log", env=env):
        yield url


def test_a_full_bound_is_429_and_answers_without_the_model_still_come(busy_finance):
    from gradio_client import Client

    made = run("keys", "create", "alice", "--domain", "finance")
    auth = {"Authorization": f"Bearer {made.stdout.strip()}"}
    url = busy_finance + "/v1/chat/completions"
    ask = lambda q, **kw: {"model": "finance", "messages": [{"role": "user", "content": q}], **kw}  # noqa: E731
    with httpx.stream("POST", url, json=ask("What is an index fund and why are its fees low?", stream=True),
                      headers=auth, timeout=300) as holding:
        assert holding.status_code == 200
        lines = holding.iter_lines()
        assert any('"content": "' in line and '"content": ""' not in line for line in lines)  # generating now
        busy = httpx.post(url, json=ask("What is a Roth IRA?"), headers=auth, timeout=60)
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "2"
        assert busy.json()["error"]["code"] == "busy" and "try again in a moment" in busy.json()["error"]["message"]
        # Tool figures and refusals computed by code need no model: answered while the slot is taken.
        refused = httpx.post(url, json=ask("What does Bob hold in his brokerage account?"), headers=auth, timeout=60)
        assert refused.status_code == 200 and "authorised" in refused.json()["choices"][0]["message"]["content"]
        # A portfolio answer does not wait for the model to phrase it: the code-written figures answer.
        figures = httpx.post(url, json=ask("What is my asset allocation?"), headers=auth, timeout=60).json()
        assert "Alice Ng" in figures["choices"][0]["message"]["content"] and "Figures used" in str(figures)
        ui = Client(busy_finance, verbose=False, auth=("alice", "alice-demo-pass"))
        assert "authorised" in ui.predict("What does Bob hold in his brokerage account?", None, api_name="/ask")["answer"]

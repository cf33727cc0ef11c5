"""The managed llama.cpp engine (issue 20): one process with parallel slots serves the
three domains, each with its own LoRA chosen per request; their turns decode at the same
time; a killed engine fails the turn in flight with a clear error and the next turn starts
a new one; `assistants serve` on it follows a promotion live; `assistants engine
status|stop`. All on the real engine process (xllamacpp) and real random LoRAs."""
from __future__ import annotations

import os
import signal
import sys

import httpx
import pytest

from shared.generation import GenerationError, create_generator, for_serving, is_available
from shared.generation.engine import EngineManager
from shared.settings import GenerationSettings

from .adapters import random_lora
from .servers import free_port, running
from .test_cli import run

requires_engine = pytest.mark.skipif(not is_available("engine"), reason="needs xllamacpp (pip install xllamacpp)")
pytestmark = requires_engine

QUESTION = [{"role": "user", "content": "What should I check before signing a lease?"}]
LONG = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea, in many sentences."}]


@pytest.fixture(scope="module")
def loras(state_dir, tmp_path_factory):
    """Two real GGUF LoRAs (random weights), standing in for the medical and legal adapters."""
    tmp = tmp_path_factory.mktemp("engine-loras")
    return {name: random_lora(state_dir, tmp / name, seed=seed)[1] for name, seed in (("medical", 11), ("legal", 12))}


@pytest.fixture
def engine_state(tmp_path):
    """A state dir of its own, and its engine stopped afterwards."""
    yield tmp_path
    EngineManager(tmp_path).stop()


def generator(state, adapter=None, backend="engine", **kw):
    """Every prompt evaluated anew (no prefix cache), so equal answers mean equal computation."""
    settings = GenerationSettings(backend=backend, adapter=str(adapter) if adapter else None, max_new_tokens=48,
                                  max_concurrency=3, prefix_cache=False, **kw)
    return create_generator(settings, state)


def test_serving_runs_a_local_model_in_the_engine_unless_told_otherwise():
    assert for_serving(GenerationSettings(backend="llamacpp")).backend == "engine"
    assert for_serving(GenerationSettings(backend="llamacpp", serve="in-process")).backend == "llamacpp"
    remote = GenerationSettings(backend="openai", base_url="http://127.0.0.1:9/v1")
    assert for_serving(remote).backend == "openai"  # a model server of one's own stays in charge


def test_three_domains_share_one_engine_each_with_its_own_adapter(loras, engine_state):
    gens = {"finance": generator(engine_state), **{d: generator(engine_state, p) for d, p in loras.items()}}
    engine = EngineManager(engine_state).running()
    assert set(engine.spec.adapters) == {str(p.resolve()) for p in loras.values()}, "one process, both LoRAs"
    streams = {d: g.stream(QUESTION) for d, g in gens.items()}
    # Every stream gives its first token while all three are open: served one after the
    # other, the second would wait for the first to end. No timings compared.
    firsts = {d: next(s) for d, s in streams.items()}
    together = {d: firsts[d] + "".join(s) for d, s in streams.items()}
    assert EngineManager(engine_state).running().pid == engine.pid, "no restart while serving"
    alone = {d: g.generate(QUESTION) for d, g in gens.items()}
    assert together == alone, "batched with other domains' turns, each answer is what its adapter gives alone"
    assert len(set(alone.values())) == 3, "each adapter (and none) gives its own answer"


def test_the_adapter_is_applied_as_llama_cpp_applies_it_in_process(loras, engine_state):
    """The per-request LoRA is the adapter for real: the first token's log-probabilities agree
    with the in-process llama.cpp loading the same file (two llama.cpp builds: within 0.1)."""
    choices = ["A", "The", "I", "You"]
    for adapter in loras.values():
        served = generator(engine_state, adapter).choice_logprobs(QUESTION, choices)
        local = generator(engine_state, adapter, backend="llamacpp").choice_logprobs(QUESTION, choices)
        best = max(range(len(choices)), key=local.__getitem__)
        assert abs(served[best] - local[best]) < 0.1, (choices[best], served, local)


def test_a_killed_engine_fails_the_turn_clearly_and_the_next_turn_works(engine_state):
    gen = generator(engine_state)
    first = EngineManager(engine_state).running().pid
    stream = gen.stream(LONG, max_tokens=200)
    assert next(stream)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(GenerationError, match="the model engine stopped during this answer"):
        list(stream)
    assert gen.generate(QUESTION, max_tokens=8)
    assert EngineManager(engine_state).running().pid != first, "a new engine answered"


def test_engine_status_and_stop_commands(engine_state):
    generator(engine_state)
    env = {"ASSISTANTS_STATE_DIR": str(engine_state)}
    status = run("engine", "status", env=env)
    assert status.returncode == 0 and "answering; 3 slots" in status.stdout, status.stdout + status.stderr
    assert run("engine", "stop", env=env).stdout.strip() == "stopped"
    assert "not running" in run("engine", "status", env=env).stdout
    assert run("engine", "stop", env=env).stdout.strip() == "not running"


@pytest.fixture(scope="module")
def served_medical(state_dir, tmp_path_factory):
    """`assistants serve medical` as `up` serves it by default: the model in the engine."""
    from .test_serving import _register
    from .adapters import promotion_restored

    tmp = tmp_path_factory.mktemp("engine-serve")
    with promotion_restored(state_dir) as reg:
        first = _register(reg, tmp, state_dir, seed=21)
        reg.promote(first.version)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "ASSISTANTS_GENERATION__SERVE": "engine"}
        cmd = [sys.executable, "-m", "assistants.cli", "serve", "medical", "--port", str(port)]
        try:
            with running(cmd, f"{url}/healthz", tmp / "serve.log", env=env) as proc:
                yield url, reg, first, proc, tmp
        finally:
            EngineManager(state_dir).stop()


def test_served_on_the_engine_follows_a_promotion_without_restarting(served_medical, state_dir):
    from gradio_client import Client

    from .test_serving import _register

    url, reg, first, proc, tmp = served_medical
    ready = httpx.get(f"{url}/readyz", timeout=60).json()
    assert ready["ready"] and ready["backend"] == "engine" and "llama.cpp engine pid" in ready["engine"]
    assert ready["adapter"].startswith(f"medical/{first.version} (adapter.gguf@")
    client = Client(url, verbose=False)
    question = "What does hypertension mean?"
    before = client.predict(question, None, api_name="/ask")
    second = _register(reg, tmp, state_dir, seed=22)
    reg.promote(second.version)
    after = client.predict(question, None, api_name="/ask")
    assert after["generator"]["adapter"].startswith(f"medical/{second.version} (adapter.gguf@")
    assert after["answer"] != before["answer"], "the new adapter answers"
    assert proc.poll() is None, "the app was not restarted"
    assert httpx.get(f"{url}/readyz", timeout=60).json()["adapter"].startswith(f"medical/{second.version}")

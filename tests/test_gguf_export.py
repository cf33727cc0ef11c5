"""An exported GGUF LoRA must behave like the PEFT adapter it came from: llama.cpp +
the export and transformers + PEFT agree on next-token logits and greedy continuation."""
from __future__ import annotations

import numpy as np
import pytest

from shared.generation import create_generator
from shared.settings import GenerationSettings

PROMPT = [{"role": "user", "content": "What is hypertension?"}]


def llama_logits(gen, tokens) -> np.ndarray:
    import llama_cpp

    gen.llm.reset()
    gen.llm.eval(tokens)
    ptr = llama_cpp.llama_get_logits_ith(gen.llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(gen.llm.n_vocab(),)).copy()


@pytest.fixture(scope="module")
def adapter(state_dir, tmp_path_factory):
    """A random (non-zero, PEFT's init_lora_weights=False) LoRA on every projection. Its
    effect on the logits (several units) must dwarf the noise floor: llama.cpp computes
    on Q4_1 weights, transformers on their fp32 dequantization, and merely attaching a
    LoRA changes llama.cpp's kernels, which moves logits by ~0.6 on its own."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from shared.finetune.gguf_export import export
    from shared.generation.models import bundled_gguf, dequantized_checkpoint

    base = dequantized_checkpoint(bundled_gguf(), state_dir / "models")
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
        r=8, lora_alpha=16, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out / "peft")
    export(out / "peft", base / "config.json", out / "adapter.gguf")
    return out


def test_export_matches_peft(adapter, state_dir):
    import torch

    ll = create_generator(GenerationSettings(backend="llamacpp", adapter=str(adapter / "adapter.gguf"), context_window=512), state_dir)
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
    assert ll_tuned.argmax() == hf_tuned.argmax()
    top = np.argsort(hf_tuned)[-5:]
    assert np.abs(ll_tuned[top] - hf_tuned[top]).max() < 1.0
    assert ll.generate(PROMPT, max_tokens=2) == hf.generate(PROMPT, max_tokens=2)
    # Further on, Q4_1-vs-fp32 noise may break a near-tie differently and the texts part;
    # teacher-forced on transformers' greedy path, llama.cpp must rank each choice top-3.
    path = tokens + hf.model.generate(ids, max_new_tokens=8, do_sample=False)[0, len(tokens):].tolist()
    for i in range(len(tokens), len(path)):
        assert path[i] in np.argsort(llama_logits(ll, path[:i]))[-3:], f"step {i - len(tokens)} disagrees"
    for g in (ll, ll_base):
        g.close()

"""Real LoRA adapters for tests, made without training: random (non-zero) weights on every
projection, so their effect on the output is large and unmistakable."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def promotion_restored(state_dir: Path, domain: str = "medical") -> Iterator:
    """The domain's registry, with its promoted pointer put back afterwards, so the random
    test adapters never stand in other tests' promotion gates."""
    from shared.finetune import AdapterRegistry

    reg = AdapterRegistry(state_dir, domain)
    pointer = reg.root / "promoted.json"
    before = pointer.read_text() if pointer.is_file() else None
    try:
        yield reg
    finally:
        if before is None:
            pointer.unlink(missing_ok=True)
        else:
            pointer.write_text(before)


def random_lora(state_dir: Path, out: Path, seed: int = 0) -> tuple[Path, Path]:
    """Writes ``out/peft`` (PEFT) and ``out/adapter.gguf`` (its export) for the bundled model;
    returns both paths."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from shared.finetune.gguf_export import export
    from shared.generation.models import bundled_gguf, dequantized_checkpoint

    base = dequantized_checkpoint(bundled_gguf(), state_dir / "models")
    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
        r=8, lora_alpha=16, init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    model.save_pretrained(out / "peft")
    export(out / "peft", base / "config.json", out / "adapter.gguf")
    return out / "peft", out / "adapter.gguf"

"""Real LoRA adapters for tests, made without training: random (non-zero) weights on every
projection, so their effect on the output is large and unmistakable."""
from __future__ import annotations

from pathlib import Path


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

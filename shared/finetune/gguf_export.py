"""PEFT LoRA -> GGUF LoRA adapter, so the llamacpp backend applies it at full speed.
Tensor names and the q/k row permutation follow llama.cpp's own converter: its GGUF
stores q/k weights permuted for rotary embedding, and W + B·A keeps that layout only if
B's rows are permuted the same way."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

# HF module -> llama.cpp tensor
_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
          "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
          "mlp.down_proj": "ffn_down"}
_KEY = re.compile(r"layers\.(\d+)\.(self_attn\.\w+|mlp\.\w+)\.lora_([AB])\.weight$")


class ExportError(ValueError):
    """The adapter cannot be expressed as a GGUF LoRA (the message says why)."""


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def export(adapter_dir: Path, base_config: Path, out: Path) -> Path:
    from gguf import GGUFWriter
    from safetensors.numpy import load_file

    adapter_dir = Path(adapter_dir)
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    mcfg = json.loads(Path(base_config).read_text())
    if mcfg.get("model_type") not in ("llama", "mistral", "qwen2"):
        raise ExportError(f"GGUF export supports llama-family models, not {mcfg.get('model_type')!r}")
    n_head, n_kv = mcfg["num_attention_heads"], mcfg.get("num_key_value_heads", mcfg["num_attention_heads"])
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    writer = GGUFWriter(str(out), arch="llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(acfg["lora_alpha"]))
    written = 0
    for key in sorted(tensors):
        m = _KEY.search(key)
        if m is None:
            raise ExportError(f"unsupported adapter tensor {key} (only LoRA on attention/MLP projections)")
        layer, module, ab = m.groups()
        w = tensors[key].astype(np.float32)
        if ab == "B" and module == "self_attn.q_proj":
            w = _permute(w, n_head)
        elif ab == "B" and module == "self_attn.k_proj":
            w = _permute(w, n_kv)
        writer.add_tensor(f"blk.{layer}.{_NAMES[module]}.weight.lora_{ab.lower()}", np.ascontiguousarray(w))
        written += 1
    if not written:
        raise ExportError(f"{adapter_dir}: no LoRA tensors found")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out

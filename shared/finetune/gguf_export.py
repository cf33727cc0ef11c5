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


def merge(base_gguf: Path, lora_gguf: Path, out: Path) -> Path:
    """The base GGUF with a GGUF LoRA folded into its weights (W + alpha/r · B·A), so
    llama.cpp runs it at about the base model's speed: applying a LoRA at run time adds
    four graph ops per adapted matrix, which costs a small model a quarter of its decode
    speed. Adapted matrices in 4/5-bit types are stored as Q8_0: re-quantizing them to 4
    bits would add noise as large as the adapter's effect. Written to a temporary name,
    then renamed."""
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize, quantize

    lora = GGUFReader(str(lora_gguf))
    alpha = float(lora.fields["adapter.lora.alpha"].contents())
    pairs = {t.name: np.asarray(t.data, dtype=np.float32) for t in lora.tensors}
    base = GGUFReader(str(base_gguf))
    arch = base.fields["general.architecture"].contents()
    tmp = out.with_name(out.name + ".tmp")
    writer = GGUFWriter(str(tmp), arch=arch)
    for field in base.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = field.types[0]
        writer.add_key_value(field.name, field.contents(), kind,
                             sub_type=field.types[-1] if kind == GGUFValueType.ARRAY else None)
    merged = 0
    tensors = []
    for t in base.tensors:
        data, kind = t.data, t.tensor_type
        a, b = pairs.get(t.name + ".lora_a"), pairs.get(t.name + ".lora_b")
        if a is not None and b is not None:
            w = dequantize(data, kind) + (alpha / a.shape[0]) * (b @ a)
            kind = kind if kind in (Q.F32, Q.F16, Q.BF16, Q.Q8_0) else Q.Q8_0
            data = w.astype(np.float32) if kind == Q.F32 else quantize(w.astype(np.float32), kind)
            merged += 1
        tensors.append(data)
        writer.add_tensor_info(t.name, data.shape, data.dtype, data.nbytes, kind)
    if merged * 2 != len(pairs):
        raise ExportError(f"{lora_gguf}: {len(pairs) // 2 - merged} LoRA pairs match no tensor of {base_gguf.name}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for data in tensors:
        writer.write_tensor_data(data)
    writer.close()
    tmp.replace(out)
    return out

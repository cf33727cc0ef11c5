"""Every generation backend that can run here, through one contract; plus the pieces
around them (stop scanning, backend selection, failures)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.generation import GenerationError, StopScanner, create_generator, is_available, resolve
from shared.settings import GenerationSettings

from . import generation_contract as contract
from .servers import free_port, running

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real OpenAI-compatible server (llama.cpp's) on the bundled GGUF."""
    from shared.generation.models import bundled_gguf

    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--seed", "0", "--logits_all", "true"]
    with running(cmd, f"http://127.0.0.1:{port}/v1/models", tmp_path_factory.mktemp("llama-server") / "server.log"):
        yield f"http://127.0.0.1:{port}/v1"


IN_PROCESS = ["llamacpp", "transformers", "openai"]


@pytest.fixture(scope="module", params=IN_PROCESS)
def generator(request, state_dir):
    name = request.param
    if not is_available(name):
        pytest.skip(f"{name} is not installed")
    extra = {"base_url": request.getfixturevalue("llama_server")} if name == "openai" else {}
    gen = create_generator(GenerationSettings(backend=name, context_window=1024, **extra), state_dir)
    yield gen
    gen.close()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda c: c.__name__)
def test_backend_contract(generator, check):
    check(generator)


@pytest.mark.require_unsloth
@pytest.mark.skipif(not is_available("unsloth"), reason="unsloth is not installed")
def test_unsloth_backend_contract(state_dir):
    # A subprocess: importing unsloth patches transformers for the whole process.
    out = subprocess.run([sys.executable, "-m", "tests.generation_contract", "unsloth"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900, env={**os.environ})
    assert out.returncode == 0 and "CONTRACT OK" in out.stdout, out.stdout[-2000:] + out.stderr[-4000:]
    assert "'backend': 'unsloth'" in out.stdout


def test_model_id_names_the_weights(state_dir):
    gen = create_generator(GenerationSettings(backend="llamacpp", context_window=512), state_dir)
    assert gen.model_id.startswith("SmolLM2-135M-Instruct.Q4_1.gguf@") and len(gen.model_id.split("@")[1]) == 12
    assert gen.describe() == {"backend": "llamacpp", "model": gen.model_id, "adapter": None}


def test_transformers_caches_the_dequantized_model_once(state_dir):
    from shared.generation.models import bundled_gguf, dequantized_checkpoint

    first = dequantized_checkpoint(bundled_gguf(), state_dir / "models")
    stamp = (first / "config.json").stat().st_mtime
    assert dequantized_checkpoint(bundled_gguf(), state_dir / "models") == first
    assert (first / "config.json").stat().st_mtime == stamp
    assert "quantization_config" not in (first / "config.json").read_text()
    assert list(first.glob("*.safetensors"))


def test_auto_picks_llamacpp_on_cpu():
    import torch

    if torch.cuda.is_available():
        assert resolve("auto") == ("unsloth" if is_available("unsloth") else "llamacpp")
    else:
        assert resolve("auto") == "llamacpp"
    assert resolve("transformers") == "transformers"


def test_clear_errors(state_dir, tmp_path):
    with pytest.raises(GenerationError, match="needs a local GGUF"):
        create_generator(GenerationSettings(backend="llamacpp", model=str(tmp_path / "missing.gguf")), state_dir)
    with pytest.raises(GenerationError, match="adapter not found"):
        create_generator(GenerationSettings(backend="llamacpp", adapter=str(tmp_path / "a.gguf")), state_dir)
    with pytest.raises(GenerationError, match="base_url"):
        create_generator(GenerationSettings(backend="openai"), state_dir)
    closed = create_generator(GenerationSettings(backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1"), state_dir)
    with pytest.raises(GenerationError, match="cannot reach"):
        closed.generate(contract.CAPITAL, max_tokens=4)


@pytest.mark.parametrize("pieces,stops,expected", [
    (["Hello wor", "ld! STO", "P here"], ["STOP"], "Hello world! "),
    (["ab", "c"], ["x"], "abc"),
    (["<|im", "_end|>", "tail"], ["<|im_end|>"], ""),
    (["a <", "b"], ["<|im_end|>"], "a <b"),
])
def test_stop_scanner(pieces, stops, expected):
    sc = StopScanner(stops)
    out = "".join(sc.feed(p) for p in pieces if not sc.stopped) + sc.flush()
    assert out == expected


def test_transformers_applies_a_peft_adapter(state_dir, tmp_path):
    """A LoRA with random (not zero) B matrices must change the output, and be named."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from shared.generation.models import bundled_gguf, dequantized_checkpoint

    base_dir = dequantized_checkpoint(bundled_gguf(), state_dir / "models")
    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                                LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = create_generator(GenerationSettings(backend="transformers", context_window=512), state_dir)
    tuned = create_generator(GenerationSettings(backend="transformers", context_window=512, adapter=str(tmp_path / "adapter")), state_dir)
    assert tuned.describe()["adapter"] == str(tmp_path / "adapter")
    assert tuned.generate(contract.CAPITAL, max_tokens=12) != plain.generate(contract.CAPITAL, max_tokens=12)

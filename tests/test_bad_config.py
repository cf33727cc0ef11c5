"""Configuration that cannot work stops with a message naming the setting and the fix,
never a traceback: an unreachable DATABASE_URL (password not echoed), missing model
files, and an adapter trained on other base weights (the registry's base hash)."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from shared.finetune import AdapterRegistry

from .adapters import random_lora
from .test_cli import run


def test_unreachable_database_url_is_named_without_its_password():
    out = run("search", "finance", "ira", env={**os.environ, "DATABASE_URL": "postgresql://u:s3cr3t@127.0.0.1:1/db"})
    assert out.returncode == 2
    assert "cannot connect to Postgres at DATABASE_URL" in out.stderr and "port=1" in out.stderr
    assert "s3cr3t" not in out.stderr + out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("key,value,message", [
    ("ASSISTANTS_GENERATION__MODEL", "/missing/model.gguf", "generation.model='/missing/model.gguf'"),
    ("ASSISTANTS_EMBEDDING__MODEL", "/missing/embedder", "embedding.model '/missing/embedder' cannot be loaded"),
])
def test_missing_model_files_are_named(key, value, message):
    out = run("ask", "finance", "What is an IRA?", env={**os.environ, key: value})
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_an_adapter_for_other_base_weights_is_refused(tmp_path, state_dir):
    """Promotion is refused; and if the served model changes under a promoted adapter,
    the assistant says which weights the adapter needs instead of serving nonsense."""
    reg = AdapterRegistry(state_dir, "medical")
    pointer = reg.root / "promoted.json"
    before = pointer.read_text() if pointer.is_file() else None
    peft, gguf = random_lora(state_dir, tmp_path / "lora")
    foreign = reg.register(peft, {"base_model": "Llama-3.1-8B-Instruct.Q4_K_M.gguf@0123456789ab",
                                  "base_model_sha256": "0" * 64, "dataset_hash": "0" * 64,
                                  "engine": "test (random weights)", "metrics": {"val_loss": 0.01, "base_val_loss": 4.0}},
                           gguf)
    try:
        out = run("adapters", "promote", "medical", foreign.version)
        assert out.returncode == 2 and "was trained on Llama-3.1-8B-Instruct" in out.stderr
        assert reg.promoted_version() != foreign.version
        pointer.write_text(json.dumps({"version": foreign.version}))  # as if the base model changed since
        asked = run("ask", "medical", "What does hypertension mean?")
        assert asked.returncode == 2 and "but the served model is SmolLM2-135M-Instruct" in asked.stderr
    finally:
        if before is None:
            pointer.unlink(missing_ok=True)
        else:
            pointer.write_text(before)
        shutil.rmtree(foreign.path)

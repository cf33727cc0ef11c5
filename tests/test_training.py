"""A real (tiny) fine-tuning run through the CLI: Unsloth's CPU backend, killed after
its first checkpoint, resumed, registered with its data card, then gated promotion."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from shared.finetune import AdapterRegistry

from .test_cli import run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_kill_resume_register_promote(tmp_path, state_dir):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"sources": [{"path": str(ROOT / "medical" / "train_data" / "sample_qa.jsonl"), "group": "focus"}],
                 "val_fraction": 0.2},
        "lora": {"r": 8, "alpha": 16},
        "train": {"max_steps": 6, "batch_size": 2, "max_seq_length": 256, "eval_steps": 2, "save_steps": 2,
                  "logging_steps": 1, "learning_rate": 5e-4},
    }))
    runs = state_dir / "finetune" / "medical"
    before = set(runs.glob("run-*")) if runs.exists() else set()
    log = open(tmp_path / "train.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "assistants.cli", "train", "medical", "--config", str(config), "--quiet"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.time() + 900
    while not list(runs.glob("run-*/checkpoints/checkpoint-2/trainer_state.json")):
        assert proc.poll() is None, (tmp_path / "train.log").read_text()[-3000:]
        assert time.time() < deadline, "no checkpoint within 15 minutes"
        time.sleep(1)
    proc.send_signal(signal.SIGKILL)  # an interruption, not a clean stop
    proc.wait()
    (run_dir,) = set(runs.glob("run-*")) - before
    assert not (run_dir / "registered.json").exists()

    resumed = run("train", "medical", "--resume", "--config", str(config), "--quiet", timeout=1800)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "registered adapter" in resumed.stdout
    version = json.loads((run_dir / "registered.json").read_text())["version"]
    manifest = json.loads(run("adapters", "show", "medical", version).stdout)
    # The newest checkpoint at the kill: checkpoint-2, or a later one written meanwhile.
    resumed_from = Path(manifest["resumed_from"])
    assert resumed_from.parent == run_dir / "checkpoints" and resumed_from.name.startswith("checkpoint-")
    assert manifest["metrics"]["steps"] == 6 and manifest["engine"] == "unsloth"
    assert manifest["base_model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf@") and len(manifest["base_model_sha256"]) == 64
    assert manifest["data_card"]["split_sizes"]["validation"] > 0 and len(manifest["dataset_hash"]) == 64
    assert (state_dir / "adapters" / "medical" / version / "adapter" / "adapter_config.json").is_file()
    assert (state_dir / "adapters" / "medical" / version / "adapter.gguf").is_file()
    assert (run_dir / "data_card.md").read_text().startswith("# Data card")

    current = AdapterRegistry(state_dir, "medical").promoted()
    bar = current.metric("val_loss") if current else manifest["metrics"]["base_val_loss"]
    promote = run("adapters", "promote", "medical", version)
    if manifest["metrics"]["val_loss"] < bar:
        assert promote.returncode == 0 and "promoted" in promote.stdout
        assert "* " + version in run("adapters", "list", "medical").stdout
    else:
        assert promote.returncode == 1 and "does not beat" in promote.stderr

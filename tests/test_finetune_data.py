"""Fine-tuning data preparation and the adapter registry (no training here)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from assistants.domains import DOMAINS, domain_dir
from shared.finetune import AdapterRegistry, PromotionRefused, load_finetune_config
from shared.finetune.config import DataArgs, DataSource
from shared.finetune.data import strip_markup, dedupe, prepare, scrub, split, Example, DataCard
from shared.settings import ConfigError


@pytest.mark.parametrize("domain", [d for d in DOMAINS if (domain_dir(d) / "train.yaml").is_file()])
def test_every_train_yaml_is_valid(domain):
    cfg = load_finetune_config(domain_dir(domain))
    assert cfg.data.sources and cfg.lora.r > 0


def test_train_yaml_errors_name_the_key(tmp_path):
    (tmp_path / "train.yaml").write_text("lora: {rank: 8}\n")
    with pytest.raises(ConfigError, match="lora.rank"):
        load_finetune_config(tmp_path)
    (tmp_path / "train.yaml").write_text("data: {val_fraction: 1.5}\n")
    with pytest.raises(ConfigError, match="val_fraction"):
        load_finetune_config(tmp_path)


def test_clean_and_scrub():
    assert strip_markup("<p>Hello&nbsp;<b>world</b></p>\n\n\n  next ") == "Hello world\n\nnext"
    counts = Counter()
    out = scrub("Write to jane.doe@example.org or call (555) 123-4567; SSN 123-45-6789, MRN: 8812345.", counts)
    assert "example.org" not in out and "4567" not in out and "6789" not in out and "8812345" not in out
    assert counts == {"email": 1, "phone": 1, "ssn": 1, "mrn": 1}


def test_exact_and_near_duplicates_are_dropped():
    base = "High blood pressure often has no symptoms and is found at routine checks of the arteries and heart"
    exs = [Example("What is hypertension?", base, "a", "s"),
           Example("what is HYPERTENSION ?", base + ".", "b", "s"),            # exact after normalising
           Example("What is hypertension?", base + " today", "c", "s"),       # near duplicate
           Example("What is asthma?", "Asthma narrows the airways and causes wheezing and cough.", "d", "s")]
    card = DataCard()
    kept = dedupe(exs, 0.8, card)
    assert [e.group for e in kept] == ["a", "d"]
    assert card.dropped == {"exact duplicate": 1, "near duplicate": 1}


def test_split_keeps_each_group_on_one_side():
    exs = [Example(f"q{i}", "an answer", f"group{i % 7}", "s") for i in range(70)]
    train, val = split(exs, 0.3, seed=0)
    assert train and val and len(train) + len(val) == 70
    assert not ({e.group for e in train} & {e.group for e in val})
    assert split(exs, 0.3, seed=0) == (train, val)  # deterministic


def test_prepare_writes_a_complete_card(tmp_path):
    rows = [{"question": f"What is condition {i}?", "answer": f"Condition {i} is a made-up illness number {i} with its own features.",
             "focus": f"c{i % 5}"} for i in range(30)]
    rows += [{"question": "", "answer": "orphan"}, {"question": "What is x?", "answer": "x" * 9000}, rows[0]]
    (tmp_path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    train, val, card = prepare(DataArgs(sources=[DataSource(path="qa.jsonl", group="focus")], max_chars=5000), tmp_path, "sys")
    d = card.to_dict()
    assert d["steps"][0] == ("loaded", 33)
    assert d["dropped"] == {"empty": 1, "over-long": 1, "exact duplicate": 1}
    assert d["split_sizes"] == {"train": len(train), "validation": len(val)} and len(d["dataset_hash"]) == 64
    assert any("augmented" in name for name, _ in d["steps"])
    assert train[0]["prompt"][0] == {"role": "system", "content": "sys"} and train[0]["completion"][0]["role"] == "assistant"
    assert not ({r["group"] for r in train} & {r["group"] for r in val})
    assert "Data card" in card.markdown()


def _register(reg: AdapterRegistry, tmp_path: Path, val: float, base: float = 2.5):
    src = tmp_path / f"a{val}"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    return reg.register(src, {"metrics": {"val_loss": val, "base_val_loss": base}, "engine": "test", "dataset_hash": "h"})


def test_registry_versions_and_gated_promotion(tmp_path):
    reg = AdapterRegistry(tmp_path, "medical")
    worse_than_base = _register(reg, tmp_path, 2.6)
    good = _register(reg, tmp_path, 2.2)
    better = _register(reg, tmp_path, 2.0)
    assert [a.version for a in reg.versions()] == ["v0001", "v0002", "v0003"]
    with pytest.raises(PromotionRefused, match="base model"):
        reg.promote(worse_than_base.version)
    assert reg.promoted() is None
    reg.promote(good.version)
    assert reg.promoted().version == "v0002"
    with pytest.raises(PromotionRefused, match="v0002"):
        reg.promote(worse_than_base.version)
    reg.promote(better.version)
    assert reg.promoted().version == "v0003"
    with pytest.raises(KeyError, match="known: v0001, v0002, v0003"):
        reg.get("v0099")

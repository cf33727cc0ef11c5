"""``assistants label DOMAIN POOL`` end to end on the domains' self-written samples (and on
CUAD passages when ../shared/data is there): the files it writes, the label card, the
training JSONL read back by the fine-tuning pipeline, and the refusals (exit 2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistants.domains import settings_for
from shared.analysis import Checklist
from shared.finetune.config import DataSource
from shared.finetune.data import load
from shared.labeling import pipeline

ROOT = Path(__file__).resolve().parents[1]
CUAD = ROOT.parent / "shared" / "data" / "legal" / "cuad"
SPECS = sorted(ROOT.glob("*/labeling.yaml"))


def read_spec(path: Path) -> pipeline.LabelingSpec:
    settings_for(path.parent.name)  # imports the domain's plugins, which the spec names
    return pipeline.read_spec(path)


def label(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistants.cli", "label", *args, "--quiet"], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)


def sample(domain: str, name: str) -> str:
    return str(ROOT / domain / "labeling_data" / f"sample_{name}.jsonl")


@pytest.mark.parametrize("domain", ["legal", "medical"])
def test_labels_the_sample_pool_into_training_data(domain, tmp_path):
    done = label(domain, sample(domain, "pool"), "--gold", sample(domain, "gold"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"[{domain}] labeled " in done.stdout and str(tmp_path) in done.stdout
    card = json.loads((tmp_path / "label_card.json").read_text())
    assert card["pool_size"] >= 100 and card["gold_size"] == 1 and card["gold_fraction"] <= 0.01
    assert {row["name"] for row in card["functions"]} == set(read_spec(ROOT / domain / "labeling.yaml").lset.names)
    assert sum(n > 0 for n in card["label_distribution"].values()) >= 6
    assert card["kept"] + sum(card["dropped"].values()) == card["pool_size"] + card["gold_added_to_pool"]
    markdown = (tmp_path / "label_card.md").read_text()
    assert "| name | coverage | overlap | conflict | gold_count | accuracy |" in markdown
    assert "accuracy_weighted" in markdown and "majority_vote" in markdown

    items = [json.loads(line) for line in (tmp_path / "labeled.jsonl").read_text().splitlines()]
    weak = [item for item in items if item["source"] == "weak"]
    assert len(items) == card["kept"] and all(item["votes"] and item["confidence"] >= 0.6 for item in weak)
    gold = json.loads(Path(sample(domain, "gold")).read_text())
    assert [item["label"] for item in items if item["source"] == "gold"] == [gold["label"]] and card["kept_gold"] == 1
    examples = list(load([DataSource(path="train.jsonl", group="group")], tmp_path))
    assert len(examples) == card["training_examples"] > 0
    assert all(ex.question and ex.answer and ex.group for ex in examples)
    if domain == "legal":  # the analyzer's judge prompt, answered Yes or No
        assert all(ex.question.startswith("Clause: ") and ex.answer in ("Yes", "No") for ex in examples)
    else:
        assert {ex.answer for ex in examples} <= set(card["labels"])


def test_gold_over_the_cap_and_bad_input_exit_2(tmp_path):
    # 50 texts allow no gold label at 1%.
    done = label("legal", sample("legal", "pool"), "--gold", sample("legal", "gold"), "--limit", "50",
                 "--out", str(tmp_path))
    assert done.returncode == 2 and "over the cap of 0" in done.stderr
    done = label("legal", str(tmp_path / "absent.jsonl"), "--out", str(tmp_path))
    assert done.returncode == 2 and "no such file" in done.stderr
    done = label("medical", sample("legal", "pool"), "--out", str(tmp_path))
    assert done.returncode == 2 and "no text field 'question'" in done.stderr
    done = label("finance", sample("legal", "pool"), "--out", str(tmp_path))
    assert done.returncode == 2 and "no labeling.yaml" in done.stderr
    assert not (tmp_path / "labeled.jsonl").exists()


@pytest.mark.parametrize("path", SPECS, ids=[p.parent.name for p in SPECS])
def test_every_labeling_spec_loads(path):
    spec = read_spec(path)
    voted = [fn.label for fn in spec.lset.functions]
    assert all(voted.count(i) >= 2 for i in range(len(spec.lset.labels))), "several functions a label"
    if path.parent.name == "legal":  # labels are checklist categories, so the judge prompt has a question
        ids = {c.id for c in Checklist.load(ROOT / "legal" / "clauses.yaml").categories}
        assert set(spec.lset.labels) - ids == {"none"}


@pytest.mark.slow
@pytest.mark.skipif(not CUAD.is_dir(), reason="needs ../shared/data/legal/cuad")
def test_labels_cuad_passages(tmp_path):
    done = label("legal", str(CUAD), "--limit", "3000", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / "label_card.json").read_text())
    assert card["pool_size"] == 3000
    categories = [n for name, n in card["label_distribution"].items() if name != "none"]
    assert sum(n > 0 for n in categories) >= 5


@pytest.mark.slow
@pytest.mark.skipif(not CUAD.is_dir(), reason="needs ../shared/data/legal/cuad")
def test_cuad_annotations_measure_the_rules(tmp_path):
    from itertools import islice

    from legal.labeling import annotated_passages

    passages = list(islice(annotated_passages(CUAD), 3000))
    law = [p["text"] for p in passages if p["label"] == "governing_law"]
    assert law and sum("law" in text.lower() for text in law) >= 0.8 * len(law)
    assert 0.8 < sum(p["label"] == "none" for p in passages) / len(passages) < 1
    # 1% of the pool as gold, three of each label, as a labeler with that budget picks them.
    gold, per_label = [], {}
    for p in passages:
        if per_label.get(p["label"], 0) < 3:
            per_label[p["label"]] = per_label.get(p["label"], 0) + 1
            gold.append({"text": p["text"], "label": p["label"]})
    (tmp_path / "gold.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gold[:30]))
    done = label("legal", str(CUAD), "--limit", "3000", "--gold", str(tmp_path / "gold.jsonl"), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    card = json.loads((tmp_path / "label_card.json").read_text())
    assert card["gold_size"] == card["kept_gold"] == 30 and card["gold_added_to_pool"] == 0
    assert sum(row["accuracy"] is not None for row in card["functions"]) >= 5
    learned = next(row for row in card["models"] if row["name"] == "accuracy_weighted")
    assert learned["gold_count"] >= 10 and learned["accuracy"] >= 0.6

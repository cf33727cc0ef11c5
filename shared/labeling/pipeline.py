"""Programmatic labeling end to end: a pool of unlabeled texts (and at most a sliver of
gold labels) -> the domain's labeling functions -> a label model -> a labeled dataset, the
fine-tuning pipeline's training JSONL and a label card that says how far to trust it.

A domain's ``labeling.yaml`` is a labeling spec (``labels``, ``functions``: see
``load_labeling_set``) plus what this pipeline needs of the domain:

    examples: judge_examples   # (text, label, pool record) -> training records
    text_field: text           # the pool records' text field (default "text")
    pool: cuad_passages        # optional: reads a pool given as a folder

Both hooks are ``labeling hook`` plugins a domain's plugin module registers
(``@labeling_hook("judge_examples")``, shared/plugins.py).

How a labeled text becomes training examples is the domain's business (a legal clause is
a yes/no judgement, a medical question a question type), so it is a hook, not code here.
Nothing is random: the same pool, gold and spec give the same files.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..ingest.importers import DatasetError, read_records
from .analysis import label_model_report, lf_summary, to_markdown
from ..plugins import LABELING_HOOK
from .functions import ABSTAIN, Embed, LabelingError, LabelingSet, _reference, load_labeling_set, read_spec_file
from .model import AccuracyWeighted, MajorityVote

Examples = Callable[[str, str, Mapping[str, Any]], Iterable[Mapping[str, Any]]]
"""(text, label name, the pool record) -> training records ``{question, answer, group}``."""

PIPELINE_KEYS = ("examples", "text_field", "pool")
CHUNK = 256
"""Texts voted on at a time: the progress bar's step."""


@dataclass(frozen=True)
class LabelingSpec:
    """A domain's labeling set and its pipeline hooks."""

    lset: LabelingSet
    examples: Examples
    text_field: str = "text"
    pool: Callable[[Path], Iterable[Mapping[str, Any]]] | None = None


def read_spec(path: Path, *, embed: Embed | None = None) -> LabelingSpec:
    """A domain's ``labeling.yaml``: the pipeline's keys are taken off here and the rest
    goes to ``load_labeling_set``, which stays strict about anything unknown."""
    path = Path(path)
    spec = read_spec_file(path)
    hooks = {key: spec.pop(key) for key in PIPELINE_KEYS if key in spec}
    try:
        if "examples" not in hooks:
            raise LabelingError(f"examples: needs the name of a {LABELING_HOOK} making training records")
        text_field = hooks.get("text_field", "text")
        if not isinstance(text_field, str) or not text_field:
            raise LabelingError(f"text_field must be a field name, got {text_field!r}")
        lset = load_labeling_set(spec, embed=embed)
        examples = _reference("examples", hooks, "examples", LABELING_HOOK)
        pool = _reference("pool", hooks, "pool", LABELING_HOOK) if "pool" in hooks else None
        return LabelingSpec(lset, examples, text_field, pool)
    except LabelingError as e:
        raise LabelingError(f"{path.name}: {e}") from None


@cache
def spec_labels(path: Path) -> tuple[str, ...]:
    """The label names of a labeling spec, for a domain's hooks: a prompt that offers
    exactly the labels the spec trains, a gold reader that maps to them."""
    labels = read_spec_file(path).get("labels")
    if not isinstance(labels, list):
        raise LabelingError(f"{path}: no list of labels")
    return tuple(labels)


def read_pool(path: Path, spec: LabelingSpec, limit: int | None = None) -> list[dict]:
    """The pool's records (the first ``limit``), each with a non-blank text in
    ``spec.text_field``: a folder through the domain's ``pool`` reader, a .txt file one
    text a non-blank line, a .csv by column, anything else as JSON records."""
    path = Path(path)
    if path.is_dir():
        if spec.pool is None:
            raise DatasetError(f"{path}: a folder, and the domain's labeling.yaml names no pool reader for one")
        rows: Iterable[Mapping[str, Any]] = spec.pool(path)
    elif path.suffix == ".txt":
        rows = _text_lines(path, spec.text_field)
    else:
        rows = read_records(path)
    records = []
    for n, row in enumerate(islice(rows, limit), start=1):
        text = row.get(spec.text_field) if isinstance(row, Mapping) else None
        if not isinstance(text, str):
            raise DatasetError(f"{path.name}: record {n} has no text field {spec.text_field!r}")
        if text.strip():
            records.append(dict(row))
    if not records:
        raise DatasetError(f"{path}: no texts to label")
    return records


def _text_lines(path: Path, text_field: str) -> Iterable[dict]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    with open(path, encoding="utf-8") as f:
        yield from ({text_field: line.strip()} for line in f if line.strip())


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def gold_cap(pool_size: int, gold_fraction: float) -> int:
    """The most gold labels a pool this size may have (rounded down: "at most 1%")."""
    if not 0 < gold_fraction <= 1:
        raise DatasetError(f"the gold fraction must be in (0, 1], got {gold_fraction}")
    return math.floor(pool_size * gold_fraction + 1e-9)


def read_gold(path: Path, spec: LabelingSpec, pool_size: int, gold_fraction: float) -> list[tuple[str, int]]:
    """(text, label index) of a JSONL gold file (records: the pool's text field and
    ``label``). More than ``gold_cap`` items is an error, not a silent sample: the point of
    programmatic labeling is that a person labels almost nothing."""
    labels = {name: i for i, name in enumerate(spec.lset.labels)}
    gold = []
    for n, row in enumerate(read_records(path), start=1):
        text, label = row.get(spec.text_field), row.get("label")
        if not isinstance(text, str) or not text.strip() or label not in labels:
            raise DatasetError(f"{Path(path).name}: record {n} needs a text in {spec.text_field!r} and a label, "
                               f"one of {', '.join(labels)}")
        gold.append((text, labels[label]))
    cap = gold_cap(pool_size, gold_fraction)
    if len(gold) > cap:
        raise DatasetError(f"{Path(path).name}: {len(gold)} gold labels, over the cap of {cap} "
                           f"({gold_fraction:.2%} of a pool of {pool_size})")
    return gold


@dataclass
class Labeled:
    """What a run produced: the kept items, their training records and the card."""

    items: list[dict] = field(default_factory=list)
    training: list[dict] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)


def label(spec: LabelingSpec, pool: list[dict], gold: list[tuple[str, int]] = (), *,
          min_confidence: float = 0.6, max_per_label: int | None = None, progress: bool = True) -> Labeled:
    """Vote on the pool, fit the label models, keep the items ``AccuracyWeighted`` labels
    with a posterior of at least ``min_confidence``, and map them to training records.
    Gold items are matched to pool items by text (a gold text not in the pool joins it) and
    always kept, with their gold label. ``max_per_label`` keeps at most that many weak items
    of each label, the most confident first: a pool's labels are as skewed as the texts
    (most contract passages are ``none``), and a model trained on the skew learns the
    majority answer."""
    pool = list(pool)
    pool_size = len(pool)
    index = {_key(r[spec.text_field]): i for i, r in enumerate(pool)}
    for text, _ in gold:
        if _key(text) not in index:
            index[_key(text)] = len(pool)
            pool.append({spec.text_field: text})
    gold_labels = np.full(len(pool), ABSTAIN, dtype=int)
    for text, y in gold:
        gold_labels[index[_key(text)]] = y
    texts = [r[spec.text_field] for r in pool]

    lset = spec.lset
    chunks = range(0, len(texts), CHUNK)
    L = np.vstack([lset.apply(texts[s:s + CHUNK]) for s in tqdm(chunks, desc="labeling functions", unit="chunk",
                                                                 disable=not progress)])
    k = len(lset.labels)
    abstained = (L == ABSTAIN).all(axis=1)
    # Fitted on the items some function voted on: in a real pool (contract passages) most
    # items get no vote, and that mass makes one class's abstentions look certain, so EM
    # pulls every item into it. The abstained items are dropped below anyway.
    aw, mv = AccuracyWeighted(k).fit(L[~abstained]), MajorityVote(k).fit(L)
    proba, predicted = aw.predict_proba(L), aw.predict(L)
    confidence = proba.max(axis=1)
    is_gold = gold_labels != ABSTAIN
    # A person's label beats the functions': gold items are always kept, labeled as given
    # (the label model never sees gold, so its accuracy on gold stays an honest estimate).
    confident = ~abstained & ~is_gold & (confidence >= min_confidence)
    capped = _over_cap(predicted, confidence, texts, confident, max_per_label)
    kept = is_gold | (confident & ~capped)

    out = Labeled()
    for i in np.flatnonzero(kept):
        weak = None if abstained[i] else lset.labels[predicted[i]]
        name = lset.labels[gold_labels[i]] if is_gold[i] else weak
        item = {"text": texts[i], "label": name, "source": "gold" if is_gold[i] else "weak",
                "confidence": 1.0 if is_gold[i] else round(float(confidence[i]), 4),
                "votes": {fn: lset.labels[v] for fn, v in zip(lset.names, L[i]) if v != ABSTAIN}}
        if is_gold[i]:
            item["weak_label"] = weak
        out.items.append(item)
        out.training += _training(spec.examples(texts[i], name, pool[i]), texts[i], item["source"])

    has_gold = gold_labels if gold else None
    functions = lf_summary(L, has_gold, lset.names)
    for row, accuracy in zip(functions, aw.accuracies):
        row["estimated_accuracy"] = float(accuracy)  # what the label model learned without gold
    distribution = Counter(item["label"] for item in out.items)
    out.card = {
        "labels": lset.labels, "pool_size": pool_size, "gold_size": len(gold),
        "gold_fraction": len(gold) / pool_size, "gold_added_to_pool": len(pool) - pool_size,
        "min_confidence": min_confidence, "max_per_label": max_per_label, "smoothing": aw.smoothing,
        "functions": functions,
        "models": label_model_report(L, {"accuracy_weighted": aw, "majority_vote": mv}, has_gold),
        "label_distribution": {name: distribution.get(name, 0) for name in lset.labels},
        "kept": len(out.items), "kept_gold": int(is_gold.sum()),
        "dropped": {"abstained": int((abstained & ~is_gold).sum()),
                    "low_confidence": int((~abstained & ~is_gold & ~confident).sum()), "over_label_cap": int(capped.sum())},
        "training_examples": len(out.training)}
    return out


def _over_cap(predicted: np.ndarray, confidence: np.ndarray, texts: list[str], candidates: np.ndarray,
              cap: int | None) -> np.ndarray:
    """The candidates past the ``cap`` most confident of their label (ties: by text hash,
    so reruns agree)."""
    over = np.zeros(len(texts), dtype=bool)
    if cap is None:
        return over
    for y in np.unique(predicted[candidates]):
        members = np.flatnonzero(candidates & (predicted == y))
        ranked = sorted(members, key=lambda i: (-confidence[i], text_hash(texts[i])))
        over[ranked[cap:]] = True
    return over


def _training(records: Iterable[Mapping[str, Any]], text: str, source: str) -> list[dict]:
    rows = []
    for r in records:
        if not all(isinstance(r.get(key), str) and r[key].strip() for key in ("question", "answer", "group")):
            raise LabelingError(f"the examples hook must give question, answer and group strings, got {r!r} "
                                f"for {text[:60]!r}")
        # source: "gold" or "weak", so a run can train on either alone
        rows.append({"question": r["question"], "answer": r["answer"], "group": r["group"], "source": source})
    return rows


def text_hash(text: str) -> str:
    """A short stable id of a text: the default group of a training example."""
    return hashlib.sha256(_key(text).encode()).hexdigest()[:16]


def write(result: Labeled, out: Path, title: str) -> dict[str, Path]:
    """``labeled.jsonl``, ``train.jsonl`` (records a train.yaml ``DataSource`` reads, with
    ``group: group``), ``label_card.md`` and ``label_card.json`` in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("labeled.jsonl", "train.jsonl", "label_card.md", "label_card.json")}
    for name, rows in (("labeled.jsonl", result.items), ("train.jsonl", result.training)):
        with open(paths[name], "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    paths["label_card.json"].write_text(json.dumps(result.card, indent=2) + "\n", encoding="utf-8")
    paths["label_card.md"].write_text(card_markdown(result.card, title), encoding="utf-8")
    return paths


def card_markdown(card: Mapping[str, Any], title: str) -> str:
    """The label card for people: sizes, what was dropped, and the function and model tables."""
    c = card
    lines = [f"# Label card: {title}", "",
             f"Pool: {c['pool_size']} texts. Gold: {c['gold_size']} labels ({c['gold_fraction']:.2%} of the pool"
             + (f"; {c['gold_added_to_pool']} not in the pool were added to it" if c["gold_added_to_pool"] else "")
             + ").",
             f"Kept: {c['kept']} items: the {c['kept_gold']} gold ones with their gold label, the others with a "
             f"label-model posterior >= {c['min_confidence']}; dropped "
             f"{c['dropped']['abstained']} no function voted on (abstained), {c['dropped']['low_confidence']} "
             f"as low-confidence and {c['dropped']['over_label_cap']} past the cap of {c['max_per_label']} a label. "
             f"Training examples: {c['training_examples']}.", "",
             "## Labeling functions", "",
             "Coverage, overlap and conflict are shares of all items; accuracy is on gold items, "
             "estimated_accuracy what the label model learned without gold.", "",
             to_markdown(c["functions"]), "## Label models", "", to_markdown(c["models"]),
             "## Label distribution (kept items)", "", "| label | items |", "| --- | --- |"]
    lines += [f"| {name} | {n} |" for name, n in c["label_distribution"].items()]
    return "\n".join(lines) + "\n"


def summary(card: Mapping[str, Any]) -> str:
    """One line: pool, gold, what was kept and dropped, how many labels were used."""
    used = sum(n > 0 for n in card["label_distribution"].values())
    return (f"labeled {card['kept']} of {card['pool_size']} texts (abstained {card['dropped']['abstained']}, "
            f"low confidence {card['dropped']['low_confidence']}, over the label cap {card['dropped']['over_label_cap']}); "
            f"gold {card['gold_size']} "
            f"({card['gold_fraction']:.2%}); {used}/{len(card['labels'])} labels used; "
            f"{card['training_examples']} training examples")

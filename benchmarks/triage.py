"""Red-flag triage of the medical helper, measured layer by layer on a held-out set.

  python benchmarks/triage.py [--eval medical/eval/data/triage.jsonl] [--gold-fraction 0.01]
                              [--pool-extra 3000] [--out var/bench/triage]

The evaluation set (medical/eval/data/triage.jsonl) was written apart from everything the
triage is tuned on: the rules (medical/rules.yaml) were written from triage red-flag lists
and checked against the classifier's training bank (medical/triage_data/bank.jsonl), and
the classifier is fitted on that bank alone. Each item is one to three user messages; it
counts as escalated when any of its turns escalates, with the earlier messages as history,
as in a conversation.

Measured on the evaluation set:
  1. rules only (deterministic patterns);
  2. classifier only (logistic regression on MiniLM embeddings, the encoder tuned to the
     bank when the classifier section has a tune section; the fit that is served);
  3. both, as served (either escalates): redflag_recall and false_alarm_rate.
Also: 5-fold cross-validation of the regression over the frozen embeddings on the bank
(the tuned encoder takes minutes per fold; benchmarks/triage_unseen.py measures it bank by
bank), and the labels question: the same classifier fitted on weak labels plus at most
--gold-fraction gold labels vs on those gold labels alone. The pool is the bank's texts with
their labels hidden, plus --pool-extra MedQuAD questions (benign consumer questions) when
../shared/data is there; the weak labels come from the labeling tools (the rules as
labeling functions, similarity to the gold examples, a question-form heuristic, combined
by the Dawid-Skene label model).

Writes report.json, report.md and recall.png under --out; prints one RESULT line.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA, medquad  # noqa: E402
from shared.chat.rules import RuleFile, SafetyRules, expand  # noqa: E402
from shared.chat.triage import RedFlagClassifier, read_bank  # noqa: E402
from shared.embedding import SentenceEmbedding  # noqa: E402
from shared.labeling.functions import ABSTAIN, LabelingFunction, LabelingSet, similarity_lf  # noqa: E402
from shared.labeling.model import AccuracyWeighted  # noqa: E402
from shared.settings import EmbeddingSettings, read_model  # noqa: E402

RULES = ROOT / "medical" / "rules.yaml"
BENIGN = "benign"


def read_items(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def escalated(rules: SafetyRules, messages: list[str]) -> bool:
    history: list[dict] = []
    for text in messages:
        if rules.check(text, history).escalations:
            return True
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": "..."}]
    return False


def rates(items: list[dict], flags: list[bool]) -> dict:
    red = [f for it, f in zip(items, flags) if it["label"] != BENIGN]
    benign = [f for it, f in zip(items, flags) if it["label"] == BENIGN]
    return {"recall": float(np.mean(red)) if red else 0.0, "false_alarm": float(np.mean(benign)) if benign else 0.0}


def by_group(items: list[dict], flags: list[bool], key: str, label: str) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for it, f in zip(items, flags):
        if (it["label"] != BENIGN) == (label != BENIGN):
            groups[it.get(key, "?")].append(f)
    return {g: round(float(np.mean(v)), 3) for g, v in sorted(groups.items())}


def cross_validate(embed, texts: list[str], labels: list[str], vectors: np.ndarray, spec, folds: int = 5) -> dict:
    """The classifier alone, fitted on four fifths of the bank and tested on the rest."""
    order = np.random.default_rng(0).permutation(len(texts))
    red, benign = [], []
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        model = RedFlagClassifier.fit(embed, [texts[i] for i in train], [labels[i] for i in train], spec.benign,
                                      spec.threshold, spec.regularisation, vectors=vectors[train])
        found = model.categories([texts[i] for i in test], vectors[test])
        for i, c in zip(test, found):
            (benign if labels[i] == BENIGN else red).append(c is not None)
    return {"recall": float(np.mean(red)), "false_alarm": float(np.mean(benign))}


def rule_votes(rules: SafetyRules, categories: list[str]) -> LabelingFunction:
    """The rules as one labeling function: the first escalating category, else abstain."""
    index = {c: i for i, c in enumerate(categories)}

    def vote(text: str) -> int:
        fired = rules.check(text).escalations
        return index[fired[0].id] if fired and fired[0].id in index else ABSTAIN
    return LabelingFunction("rules", vote, "heuristic")


def weak_labels(embed, rules: SafetyRules, question_form: str, pool: list[str], gold: list[tuple[str, str]],
                categories: list[str]) -> list[tuple[str, str]]:
    """Dawid-Skene labels for the pool from the rules, a question-form cue, 'no rule fired'
    and similarity to the gold examples of each label; the confident ones."""
    index = {c: i for i, c in enumerate(categories)}
    fns = [rule_votes(rules, categories),
           LabelingFunction("question_form", lambda t: index[BENIGN] if re.search(question_form, t.lower(), re.I)
                            else ABSTAIN, "heuristic", index[BENIGN]),
           LabelingFunction("no_rule", lambda t: index[BENIGN] if not rules.check(t).escalations else ABSTAIN,
                            "heuristic", index[BENIGN])]
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in gold:
        by_label[label].append(text)
    fns += [similarity_lf(f"near_{label}", index[label], embed, texts, 0.6) for label, texts in by_label.items()]
    L = LabelingSet(categories, fns).apply(pool)
    voted = (L != ABSTAIN).any(axis=1)
    model = AccuracyWeighted(len(categories)).fit(L[voted])
    proba = model.predict_proba(L)
    keep = voted & (proba.max(axis=1) >= 0.6)
    return [(pool[i], categories[int(proba[i].argmax())]) for i in np.flatnonzero(keep)]


def stratified_gold(texts: list[str], labels: list[str], budget: int) -> list[tuple[str, str]]:
    """``budget`` labeled examples spread over the labels, as a person with that budget
    would pick them: one per emergency category first, then benign."""
    rng = np.random.default_rng(1)
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in rng.permutation(len(texts)):
        by_label[labels[i]].append(int(i))
    picked, round_ = [], 0
    while len(picked) < budget and any(len(v) > round_ for v in by_label.values()):
        for label in sorted(by_label, key=lambda l: l == BENIGN):
            if round_ < len(by_label[label]) and len(picked) < budget:
                picked.append(by_label[label][round_])
        round_ += 1
    return [(texts[i], labels[i]) for i in picked]


def classifier_flags(model: RedFlagClassifier, spec: RuleFile, normalise, items: list[dict]) -> list[bool]:
    """The classifier layer alone, with its own quiet patterns, as served."""
    rules = SafetyRules(normalise=normalise, classifier=model, messages=spec.messages,
                        classifier_unless=spec.classifier.unless)
    return [escalated(rules, it["messages"]) for it in items]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = sorted(report["per_category"]["both"])
    x = np.arange(len(cats))
    fig, ax = plt.subplots(figsize=(max(8, len(cats) * 0.6), 4))
    for k, layer in enumerate(("rules", "classifier", "both")):
        ax.bar(x + (k - 1) * 0.27, [report["per_category"][layer][c] for c in cats], 0.27, label=layer)
    ax.set_xticks(x, cats, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("red flags escalated")
    ax.set_title(f"Triage recall by category (false alarms: rules {report['rules']['false_alarm']:.3f}, "
                 f"both {report['both']['false_alarm']:.3f})")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval", type=Path, default=ROOT / "medical" / "eval" / "data" / "triage.jsonl")
    ap.add_argument("--gold-fraction", type=float, default=0.01)
    ap.add_argument("--pool-extra", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "triage")
    args = ap.parse_args()

    items = read_items(args.eval)
    embed = memoised(SentenceEmbedding().embed)
    spec = read_model(RULES, RuleFile, "safety rules")
    bank_texts, bank_labels = read_bank(*[RULES.parent / name for name in spec.classifier.bank])
    bank_vectors = embed(bank_texts)
    rules_only = SafetyRules.load(RULES)
    # As served: the shipped fit (with its tuned encoder when the section has one); fitted
    # once and cached under --out when the bank changed since it was shipped.
    production = RedFlagClassifier.from_bank(spec.classifier, RULES.parent, embed, args.out / "fit",
                                             EmbeddingSettings().model)
    both = SafetyRules(rules_only.rules, rules_only.normalise, production, spec.messages, spec.classifier.unless,
                       spec.classifier.veto, spec.classifier.veto_exempt, spec.classifier.veto_min_words)
    flags = {"rules": [escalated(rules_only, it["messages"]) for it in items],
             "classifier": classifier_flags(production, spec, rules_only.normalise, items),
             "both": [escalated(both, it["messages"]) for it in items]}

    pool = list(bank_texts)
    if DATA.is_dir() and args.pool_extra:
        pool += [r["question"] for r in medquad()[: args.pool_extra]]
    budget = max(1, int(len(pool) * args.gold_fraction))
    gold = stratified_gold(bank_texts, bank_labels, budget)
    categories = sorted(set(bank_labels))
    weak = weak_labels(embed, rules_only, expand("{INFO_QUESTION}", spec.terms), pool, gold, categories)
    gold_texts = {t for t, _ in gold}
    train = gold + [(t, y) for t, y in weak if t not in gold_texts]
    weak_gold = RedFlagClassifier.fit(embed, [t for t, _ in train], [y for _, y in train],
                                      threshold=spec.classifier.threshold, regularisation=spec.classifier.regularisation)
    gold_only = RedFlagClassifier.fit(embed, [t for t, _ in gold], [y for _, y in gold],
                                      threshold=spec.classifier.threshold, regularisation=spec.classifier.regularisation)

    report = {layer: rates(items, f) for layer, f in flags.items()}
    report["per_category"] = {layer: by_group(items, f, "category", "redflag") for layer, f in flags.items()}
    report["per_style"] = {layer: by_group(items, f, "style", "redflag") for layer, f in flags.items()}
    report["false_alarms_by_style"] = {layer: by_group(items, f, "style", BENIGN) for layer, f in flags.items()}
    report["bank_cross_validation_frozen"] = cross_validate(embed, bank_texts, bank_labels, bank_vectors, spec.classifier)
    report["labels"] = {"pool": len(pool), "gold": len(gold), "gold_fraction": len(gold) / len(pool),
                        "weak_kept": len(weak), "weak_accuracy_on_bank": _weak_accuracy(weak, bank_texts, bank_labels),
                        "weak_plus_gold": rates(items, classifier_flags(weak_gold, spec, rules_only.normalise, items)),
                        "gold_only": rates(items, classifier_flags(gold_only, spec, rules_only.normalise, items))}
    report["n"] = dict(Counter("redflag" if it["label"] != BENIGN else BENIGN for it in items))
    write(report, args.out)
    lab = report["labels"]
    print(f"RESULT redflag_recall={report['both']['recall']:.3f} false_alarm_rate={report['both']['false_alarm']:.3f} "
          f"rules_only_recall={report['rules']['recall']:.3f} n_redflag={report['n'].get('redflag', 0)} "
          f"n_benign={report['n'].get(BENIGN, 0)} rules_only_false_alarm={report['rules']['false_alarm']:.3f} "
          f"classifier_only_recall={report['classifier']['recall']:.3f} "
          f"classifier_only_false_alarm={report['classifier']['false_alarm']:.3f} "
          f"weak_plus_gold_recall={lab['weak_plus_gold']['recall']:.3f} "
          f"weak_plus_gold_false_alarm={lab['weak_plus_gold']['false_alarm']:.3f} "
          f"gold_only_recall={lab['gold_only']['recall']:.3f} gold_only_false_alarm={lab['gold_only']['false_alarm']:.3f} "
          f"gold_fraction={lab['gold_fraction']:.4f}")


def memoised(embed):
    """Each text embedded once: the labeling functions (one a label) ask for the same pool."""
    seen: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in seen))
        if todo:
            seen.update(zip(todo, embed(todo)))
        return np.stack([seen[t] for t in texts])
    return cached


def _weak_accuracy(weak: list[tuple[str, str]], texts: list[str], labels: list[str]) -> float:
    truth = dict(zip(texts, labels))
    judged = [y == truth[t] for t, y in weak if t in truth]
    return round(float(np.mean(judged)), 3) if judged else 0.0


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    lines = ["# Red-flag triage", "", "| layer | recall | false alarms |", "|---|---|---|"]
    lines += [f"| {k} | {report[k]['recall']:.3f} | {report[k]['false_alarm']:.3f} |" for k in ("rules", "classifier", "both")]
    lab = report["labels"]
    lines += [f"| classifier, weak + {lab['gold']} gold | {lab['weak_plus_gold']['recall']:.3f} | "
              f"{lab['weak_plus_gold']['false_alarm']:.3f} |",
              f"| classifier, {lab['gold']} gold only | {lab['gold_only']['recall']:.3f} | "
              f"{lab['gold_only']['false_alarm']:.3f} |", "", "## Recall by category", "",
              "| category | rules | classifier | both |", "|---|---|---|---|"]
    lines += [f"| {c} | {report['per_category']['rules'][c]} | {report['per_category']['classifier'][c]} | "
              f"{report['per_category']['both'][c]} |" for c in sorted(report["per_category"]["both"])]
    lines += ["", "![recall by category](recall.png)"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    plot(report, out / "recall.png")


if __name__ == "__main__":
    main()

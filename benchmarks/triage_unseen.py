"""The triage classifier on banks it has not seen: each of the banks written one at a time
by a new author (bank_4, bank_5, bank_6), the classifier fitted on the banks listed before
it, as the next author's phrasings meet it. Frozen embeddings (the regression alone) against the encoder
tuned to the bank (the classifier section's ``tune``), in the same process.

  python benchmarks/triage_unseen.py [--threshold 0.2] [--out var/bench/triage_unseen]
                                     [--rules-at 39b8706^ 8131a7a^ 4cb3d80^]

No held-out evaluation set is read: this is what the tuning, the threshold and the veto
were chosen on. Today's rules were rewritten after each bank arrived, so on the banks they
are no longer unseen; --rules-at gives, per unseen bank, the git revision of the rules
before that bank's round, and then both layers are reported too, with and without the
classifier's veto of a rule (at several levels). benchmarks/triage.py measures both layers
as served on the held-out sets.

Prints RESULT tuned_recall=... tuned_false_alarm=... frozen_recall=...
frozen_false_alarm=... recall_ratio=... false_alarm_ratio=... (tuned over frozen, pooled
over the unseen banks at the threshold) and writes report.json, curve.png (recall against
false alarms as the threshold moves) and p_benign.npz (each message's score).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.chat.rules import RuleFile, SafetyRules  # noqa: E402
from shared.chat.triage import RedFlagClassifier, read_bank  # noqa: E402
from shared.embedding import SentenceEmbedding, resolve_model_path  # noqa: E402
from shared.settings import EmbeddingSettings, read_model  # noqa: E402

RULES = ROOT / "medical" / "rules.yaml"
UNSEEN = ("bank_4.jsonl", "bank_5.jsonl", "bank_6.jsonl")  # each arrived alone, by an author who saw nothing else
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)
VETOES = (None, 0.999, 0.995, 0.99, 0.98)


def rules_at(revision: str) -> SafetyRules:
    """medical/rules.yaml as it was at ``revision`` (its classifier section left unbuilt)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:medical/rules.yaml"], check=True,
                          capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(text)
        return SafetyRules.load(path)


def both_layers(rules: SafetyRules, texts: list[str], p_benign: np.ndarray, threshold: float,
                exempt: set[str], min_words: int) -> dict:
    """Per veto level: which messages the rules (minus vetoed ones) or the classifier escalate."""
    found = [[e.id for e in rules.check(t).escalations] for t in texts]
    quiet = np.array([rules._quiet(rules.normalise(t)) for t in texts])
    classifier = (p_benign < threshold) & ~quiet
    out = {}
    for veto in VETOES:
        kept = [bool(ids) and (veto is None or p < veto or any(i in exempt for i in ids)
                               or len(t.split()) < min_words)
                for ids, p, t in zip(found, p_benign, texts)]
        out[str(veto)] = np.array(kept) | classifier
    return out


def benign_probability(model: RedFlagClassifier, texts: list[str]) -> np.ndarray:
    return model.probabilities(texts)[:, model.benign]


def rates(p_benign: np.ndarray, red: np.ndarray, threshold: float) -> dict:
    flagged = p_benign < threshold
    return {"recall": float(flagged[red].mean()), "false_alarm": float(flagged[~red].mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=None, help="default: the rules file's classifier threshold")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "triage_unseen")
    ap.add_argument("--rules-at", nargs="*", default=[], help="per unseen bank, the git revision of its rules")
    args = ap.parse_args()
    logging.basicConfig(format="%(message)s")
    logging.getLogger("shared").setLevel(logging.INFO)  # the encoder's tuning shows its steps; libraries stay quiet

    spec = read_model(RULES, RuleFile, "safety rules").classifier
    if spec.tune is None:
        sys.exit("medical/rules.yaml's classifier has no tune section: nothing to compare")
    threshold = args.threshold or spec.threshold
    model_id = EmbeddingSettings().model
    frozen_embed = SentenceEmbedding().embed
    banks = RedFlagClassifier.bank_files(spec, RULES.parent)
    pooled = {"frozen": [], "tuned": []}
    red_all, per_bank, per_bank_scores = [], {}, {}
    layered: dict[str, dict[str, list]] = {"frozen": {}, "tuned": {}}
    if args.rules_at and len(args.rules_at) != len(UNSEEN):
        sys.exit(f"--rules-at needs one revision per unseen bank ({', '.join(UNSEEN)})")
    for n, bank_name in enumerate(UNSEEN):
        k = [b.name for b in banks].index(bank_name)
        train_texts, train_labels = read_bank(*banks[:k])
        texts, labels = read_bank(banks[k])
        red = np.array([label != spec.benign for label in labels])
        print(f"{banks[k].name}: fitting on {k} banks ({len(train_texts)} messages)", flush=True)
        frozen = RedFlagClassifier.fit(frozen_embed, train_texts, train_labels, spec.benign, threshold,
                                       spec.regularisation)
        tuned = RedFlagClassifier.fit_tuned(spec, resolve_model_path(model_id), train_texts, train_labels,
                                            lambda step, steps: step % 50 == 0 and print(f"  step {step}/{steps}",
                                                                                          flush=True))
        scores = {"frozen": benign_probability(frozen, texts), "tuned": benign_probability(tuned, texts)}
        per_bank[banks[k].name] = {name: rates(p, red, threshold) for name, p in scores.items()}
        print(f"  {per_bank[banks[k].name]}", flush=True)
        for name, p in scores.items():
            pooled[name].append(p)
            per_bank_scores[f"{banks[k].stem}:{name}"] = p
            if args.rules_at:
                rules = rules_at(args.rules_at[n])
                for veto, flags in both_layers(rules, texts, p, threshold, set(spec.veto_exempt),
                                               spec.veto_min_words).items():
                    layered[name].setdefault(veto, []).append(flags)
        red_all.append(red)
    red = np.concatenate(red_all)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "p_benign.npz", **per_bank_scores)  # per bank and message, to combine with other layers
    curves = {name: {str(t): rates(np.concatenate(ps), red, t) for t in THRESHOLDS} for name, ps in pooled.items()}
    at = {name: rates(np.concatenate(ps), red, threshold) for name, ps in pooled.items()}
    both = {name: {veto: {"missed": int((~np.concatenate(f)[red]).sum()),
                          "false_alarms": int(np.concatenate(f)[~red].sum())} for veto, f in vetoes.items()}
            for name, vetoes in layered.items()}
    for name, vetoes in both.items():
        for veto, counts in vetoes.items():
            print(f"both layers, {name} classifier, veto {veto}: {counts['missed']} red flags missed, "
                  f"{counts['false_alarms']} false alarms")
    write(args.out, {"threshold": threshold, "per_bank": per_bank, "pooled": at, "curves": curves,
                     "both_layers": both, "n_redflag": int(red.sum()), "n_benign": int((~red).sum())})
    t, f = at["tuned"], at["frozen"]
    print(f"RESULT tuned_recall={t['recall']:.3f} tuned_false_alarm={t['false_alarm']:.3f} "
          f"frozen_recall={f['recall']:.3f} frozen_false_alarm={f['false_alarm']:.3f} "
          f"recall_ratio={t['recall'] / f['recall']:.3f} "
          f"false_alarm_ratio={t['false_alarm'] / max(f['false_alarm'], 1e-9):.3f} "
          f"n_redflag={int(red.sum())} n_benign={int((~red).sum())} threshold={threshold}")


def write(out: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in report["curves"].items():
        points = [curve[str(t)] for t in THRESHOLDS]
        ax.plot([p["false_alarm"] for p in points], [p["recall"] for p in points], marker="o", label=name)
    ax.set_xlabel("false alarms (benign messages escalated)")
    ax.set_ylabel("red flags escalated")
    ax.set_title("Triage classifier alone on unseen banks (threshold 0.05-0.5)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

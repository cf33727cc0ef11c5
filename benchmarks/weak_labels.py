"""Weak supervision with at most 1% gold labels: an adapter trained on programmatic labels
plus a sliver of gold vs one trained on that gold alone, against the base model.

  python benchmarks/weak_labels.py [--domains legal medical] [--pool 10000] [--gold-fraction 0.01]
                                   [--steps 60] [--max-per-label 40] [--eval-per-class 20] [--reuse-last]

Per domain:
  1. Pool: unlabeled texts. legal: CUAD clause-sized passages (``legal.labeling``,
     benchmark hold-out contracts excluded), --pool of them by hash; medical: MedQuAD
     questions whose focus (disease) is not in the evaluation set, --pool by hash.
  2. Gold: at most --gold-fraction of the pool (``pipeline.gold_cap``), labeled with the
     dataset's own annotations, stratified over labels in hash order, as a person with that
     budget would pick them (a random 1% of contract passages would be ~95% ``none``).
  3. Labeling: ``shared.labeling.pipeline`` as ``assistants label`` runs it: the domain's
     labeling functions, the label model, gold winning over votes, at most
     --max-per-label weak labels of each label (the most confident: the pool's skew would
     otherwise be the training set's); the same training rows the CLI writes, each marked
     ``source`` gold or weak.
  4. Two adapters, each ``assistants train DOMAIN --config`` in a child process under a
     benchmark state dir, with the domain's own recipe (train.yaml's system prompt, LoRA,
     learning rate, batch) and --steps steps: weak+gold (all rows) and gold only (the gold
     rows). Same steps, same compute: gold-only repeats its few examples.
  5. Evaluation, the same prompts for the base model and both adapters (llama.cpp, the
     adapters merged into the GGUF as served). legal: LegalBench development items of the
     labels' categories (``cuad_<label>``), --eval-per-class "Yes" and as many "No" each,
     asked the analyzer's judge prompt with the checklist question; items whose text lies
     in a trained passage are dropped. medical: MedQuAD questions of the held-out foci, up to
     --eval-per-class of each type, asked the training prompt. The prediction is the choice
     whose first token is likeliest (``Generator.choice_logprobs``): no free text to parse.

Also printed: the weak labels' accuracy against the dataset's annotations over the whole
pool (not just the gold), the label model's and majority vote's accuracy on the gold,
per-class accuracy, and for two-choice tasks (legal) the AUC of P(Yes) per category and
its mean: a model can rank clauses well and still answer "No" to all at the 0.5 threshold.
``--reuse-last`` evaluates the last run's adapters again without training. The RESULT keys without a prefix are the first domain's (legal by
default); the others' carry the domain's name. Needs ../shared/data.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STATE = ROOT / "var" / "bench" / "weak_labels"
# The benchmark's adapters go to a registry of their own, not the user's.
os.environ["ASSISTANTS_STATE_DIR"] = str(STATE / "state")

from benchmarks.common import DATA, medquad, need_data  # noqa: E402
from shared.text import words_only  # noqa: E402

EVAL_FOCUS_SHARE = 0.1
"""Share of MedQuAD foci (diseases) held out for the medical evaluation."""


def _rank(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


@dataclass
class Item:
    """One evaluation question: the user message, the right choice, its class."""

    prompt: str
    expected: str
    category: str


@dataclass
class Task:
    """A domain's benchmark inputs."""

    domain: str
    pool: list[dict]                 # pool records, the dataset's label under "truth"
    choices: tuple[str, ...]         # what the model picks from when evaluated
    evaluate_on: str                 # what the evaluation items are, for the report
    held_out: list[dict] = field(default_factory=list)  # raw evaluation records, where the domain has them


def legal_task(args) -> Task:
    from legal.labeling import annotated_passages

    rows = sorted(annotated_passages(DATA / "legal" / "cuad"), key=lambda r: _rank("pool", r["id"]))[:args.pool]
    pool = [{**r, "truth": r.pop("label")} for r in rows]
    return Task("legal", pool, ("Yes", "No"), "LegalBench dev items (cuad_<label>), balanced Yes/No")


def legal_items(task: Task, trained: list[str], per_class: int) -> list[Item]:
    """Balanced LegalBench items of every category the labels name, none inside a trained
    passage (LegalBench's clauses come from CUAD contracts, the pool's source)."""
    from legal.training import CHECKLIST
    from shared.analysis import Checklist
    from shared.analysis.judge import judge_prompt
    from shared.ingest.importers import read_records

    seen = "\n".join(words_only(t) for t in trained)
    questions = {c.id: c.question for c in Checklist.load(CHECKLIST).categories}
    items = []
    for label in sorted({r["truth"] for r in task.pool} - {"none"}):
        rows = sorted(read_records(DATA / "legal" / "legalbench_dev" / f"cuad_{label}.jsonl"),
                      key=lambda r: _rank("eval", r["id"]))
        for answer in task.choices:
            fresh = [r for r in rows if r["label"] == answer and words_only(r["text"]) not in seen]
            items += [Item(judge_prompt(r["text"], questions[label]), answer, label) for r in fresh[:per_class]]
    return items


def _eval_focus(focus: str) -> bool:
    return int(_rank("focus", focus)[:8], 16) / 2**32 < EVAL_FOCUS_SHARE


def medical_task(args) -> Task:
    from medical.labeling import SPEC
    from shared.labeling.pipeline import spec_labels

    labels = set(spec_labels(SPEC))
    rows = [r for r in medquad() if r["question_type"] in labels]
    pool = sorted((r for r in rows if not _eval_focus(r["focus"])), key=lambda r: _rank("pool", r["id"]))[:args.pool]
    return Task("medical", [{**r, "truth": r["question_type"]} for r in pool], spec_labels(SPEC),
                "MedQuAD questions of held-out foci, up to N a question type",
                [r for r in rows if _eval_focus(r["focus"])])


def medical_items(task: Task, trained: list[str], per_class: int) -> list[Item]:
    from medical.labeling import examples

    seen = {words_only(t) for t in trained}
    by_type = defaultdict(list)
    for r in sorted(task.held_out, key=lambda r: _rank("eval", r["id"])):
        if words_only(r["question"]) not in seen and len(by_type[r["question_type"]]) < per_class:
            prompt = next(iter(examples(r["question"], r["question_type"], r)))["question"]
            by_type[r["question_type"]].append(Item(prompt, r["question_type"], r["question_type"]))
    return [item for rows in by_type.values() for item in rows]


TASKS = {"legal": (legal_task, legal_items), "medical": (medical_task, medical_items)}


def stratified_gold(pool: list[dict], labels: tuple[str, ...], cap: int) -> list[dict]:
    """``cap`` pool records, taking each label's next record (hash order) in turn."""
    queues = {label: [r for r in pool if r["truth"] == label] for label in labels}
    gold: list[dict] = []
    while len(gold) < cap and any(queues.values()):
        for label in labels:
            if queues[label] and len(gold) < cap:
                gold.append(queues[label].pop(0))
    return gold


def label_pool(task: Task, gold_fraction: float, max_per_label: int | None, out: Path) -> dict:
    """Runs the labeling pipeline; writes train.jsonl (all rows) and gold.jsonl (gold rows)."""
    from assistants.domains import domain_dir, settings_for
    from shared.labeling import pipeline

    settings_for(task.domain)  # imports the domain's plugins, which its labeling spec names
    spec = pipeline.read_spec(domain_dir(task.domain) / "labeling.yaml")
    index = {name: i for i, name in enumerate(spec.lset.labels)}
    gold = stratified_gold(task.pool, spec.lset.labels, pipeline.gold_cap(len(task.pool), gold_fraction))
    result = pipeline.label(spec, task.pool, [(r[spec.text_field], index[r["truth"]]) for r in gold],
                            max_per_label=max_per_label)
    pipeline.write(result, out, f"{task.domain}, benchmark pool")
    rows = result.training
    (out / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["source"] == "gold"))
    truth = {r[spec.text_field]: r["truth"] for r in task.pool}
    weak = [i for i in result.items if i["source"] == "weak"]
    card = result.card
    return {"pool": len(task.pool), "gold": card["gold_size"], "gold_fraction": card["gold_fraction"],
            "weak_items": len(weak), "weak_label_accuracy": sum(i["label"] == truth[i["text"]] for i in weak) / max(1, len(weak)),
            "weak_distribution": dict(Counter(i["label"] for i in weak)),
            "gold_distribution": dict(Counter(r["truth"] for r in gold)),
            "label_models_on_gold": card["models"], "training_rows": len(rows),
            "gold_rows": sum(r["source"] == "gold" for r in rows),
            "trained_texts": [i["text"] for i in result.items]}


def train(domain: str, rows: Path, steps: int, work: Path) -> str:
    """``assistants train DOMAIN --config`` on ``rows`` with the domain's recipe; the version."""
    import yaml

    from assistants.domains import domain_dir, settings_for
    from shared.finetune.registry import AdapterRegistry

    recipe = yaml.safe_load((domain_dir(domain) / "train.yaml").read_text(encoding="utf-8"))
    recipe["data"]["sources"] = [{"path": str(rows.resolve()), "group": "group"}]
    # One validation pass, at the end: the comparison is on the benchmark's items.
    recipe["train"].update(max_steps=steps, eval_steps=steps, save_steps=steps)
    config = work / f"{rows.stem}.train.yaml"
    config.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistants.cli", "train", domain, "--config", str(config), "--quiet"],
                          cwd=ROOT, text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(f"training on {rows.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    registered = next(line for line in done.stdout.splitlines() if line.startswith(f"[{domain}] registered"))
    print(f"{registered} ({rows.name}, {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    return AdapterRegistry(settings_for(domain).state_dir, domain).versions()[-1].version


def auc(positive: list[float], negative: list[float]) -> float | None:
    """Probability that a random positive item scores above a random negative one (ties
    half): how well the scores rank, whatever threshold the model's bias sets."""
    if not positive or not negative:
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def accuracy(generator, system: str, items: list[Item], choices: tuple[str, ...]) -> dict:
    """Accuracy of the likeliest choice, per class too; with two choices also the AUC of the
    first choice's probability, per class and its mean (threshold-free)."""
    from tqdm import tqdm

    right, per_class = 0, defaultdict(lambda: [0, 0])
    first = defaultdict(lambda: ([], []))  # class -> (scores of items whose answer is choices[0], of the others)
    for item in tqdm(items, desc="evaluating", unit="item", leave=False):
        scores = generator.choice_logprobs([{"role": "system", "content": system}, {"role": "user", "content": item.prompt}],
                                           choices)
        if len(set(scores)) < len(choices):
            raise SystemExit(f"choices {choices} share a first token under this tokenizer: not a fair classifier")
        hit = choices[scores.index(max(scores))] == item.expected
        right += hit
        per_class[item.category][0] += hit
        per_class[item.category][1] += 1
        if len(choices) == 2:
            first[item.category][item.expected != choices[0]].append(scores[0] - scores[1])
    out = {"accuracy": right / len(items), "per_class": {c: round(h / n, 3) for c, (h, n) in sorted(per_class.items())}}
    aucs = {c: auc(*first[c]) for c in sorted(first)}
    if aucs and None not in aucs.values():
        out.update(mean_auc=float(np.mean(list(aucs.values()))), auc_per_class={c: round(a, 3) for c, a in aucs.items()})
    return out


def run_domain(name: str, args, work: Path) -> dict:
    from assistants.domains import domain_dir, settings_for
    from shared.finetune.config import load_finetune_config
    from shared.finetune.registry import AdapterRegistry
    from shared.finetune.serving import PromotedAdapter

    make_task, make_items = TASKS[name]
    task = make_task(args)
    out = work / name
    labeled = label_pool(task, args.gold_fraction, args.max_per_label or None, out)
    print(f"[{name}] pool {labeled['pool']}, gold {labeled['gold']} ({labeled['gold_fraction']:.2%}); weak labels "
          f"{labeled['weak_items']}, {labeled['weak_label_accuracy']:.3f} right by the dataset's annotations; "
          f"training rows {labeled['training_rows']} ({labeled['gold_rows']} gold)", file=sys.stderr)
    items = make_items(task, labeled.pop("trained_texts"), args.eval_per_class)
    if args.reuse_last:  # the adapters of the last run (same pool and gold: labeling is deterministic)
        versions = {leg: r["adapter"] for leg, r in json.loads((STATE / "last.json").read_text())[name]["results"].items()
                    if leg != "base"}
    else:
        versions = {"weak_plus_gold": train(name, out / "train.jsonl", args.steps, out),
                    "gold_only": train(name, out / "gold.jsonl", args.steps, out)}
    settings = settings_for(name)
    data = load_finetune_config(domain_dir(name)).data
    system = settings.system_message(data.system, data.system_prompt)
    loader, registry = PromotedAdapter(settings), AdapterRegistry(settings.state_dir, name)
    results = {"base": accuracy(loader.load(None), system, items, task.choices)}
    for leg, version in versions.items():
        results[leg] = {**accuracy(loader.load(registry.get(version)), system, items, task.choices), "adapter": version}
    for leg, r in results.items():
        print(f"[{name}] {leg:15s} accuracy {r['accuracy']:.3f}  " + "  ".join(f"{c} {a}" for c, a in r["per_class"].items())
              + (f"\n{'':26s}mean AUC {r['mean_auc']:.3f}  " + "  ".join(f"{c} {a}" for c, a in r["auc_per_class"].items())
                 if "mean_auc" in r else ""), file=sys.stderr)
    return {"labeling": labeled, "evaluated_on": f"{task.evaluate_on}: {len(items)} items", "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", choices=sorted(TASKS), default=["legal", "medical"])
    ap.add_argument("--pool", type=int, default=10000, help="unlabeled texts per domain")
    ap.add_argument("--gold-fraction", type=float, default=0.01, help="gold labels as a share of the pool (at most)")
    ap.add_argument("--steps", type=int, default=60, help="training steps of each adapter")
    ap.add_argument("--max-per-label", type=int, default=40,
                    help="weak labels kept per label, the most confident (assistants label --max-per-label); 0: all")
    ap.add_argument("--eval-per-class", type=int, default=20, help="evaluation items per class (legal: per answer and category)")
    ap.add_argument("--reuse-last", action="store_true", help="evaluate the last run's adapters again instead of training")
    args = ap.parse_args()
    need_data()
    work = STATE / time.strftime("run-%Y%m%dT%H%M%S")
    report = {name: run_domain(name, args, work) for name in args.domains}
    (STATE / "last.json").write_text(json.dumps({"args": vars(args), **report}, indent=1))
    keys = []
    for n, (name, r) in enumerate(report.items()):
        prefix = "" if n == 0 else f"{name}_"
        res = r["results"]
        keys += [f"{prefix}weak_plus_gold_acc={res['weak_plus_gold']['accuracy']:.3f}",
                 f"{prefix}gold_only_acc={res['gold_only']['accuracy']:.3f}",
                 f"{prefix}gold_fraction={r['labeling']['gold_fraction']:.4f}", f"{prefix}base_acc={res['base']['accuracy']:.3f}"]
        # two-choice tasks: whether the scores rank right, whatever bias sets the threshold
        keys += [f"{prefix}{leg}_auc={res[leg]['mean_auc']:.3f}" for leg in ("weak_plus_gold", "gold_only", "base")
                 if "mean_auc" in res[leg]]
    print(f"report: {STATE / 'last.json'}", file=sys.stderr)
    print("RESULT " + " ".join(keys))


if __name__ == "__main__":
    main()

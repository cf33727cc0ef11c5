"""Clause extraction on CUAD contracts held out from training: the legal analyzer with the
adapter and retrieval (hybrid), with retrieval and the base model (RAG-only), and with the
adapter reading the whole contract (fine-tuned only).

  python benchmarks/legal_clauses.py [--contracts 6] [--calibration 4] [--max-chars 20000]

Needs a registered legal adapter in the state dir (ASSISTANTS_STATE_DIR, default var/):
``assistants train legal`` (or ``assistants up``) makes one; --adapter picks a version
(default: the promoted one, else the newest). Each contract is uploaded privately, exactly
as a user's would be, and analysed through ``ClauseAnalyzer``. Each mode's threshold is
calibrated on --calibration training-side contracts (best span F1), then applied to the
held-out ones (legal.cuad.is_holdout: never trained on, never in the public corpus).

Metrics over (contract, category) pairs, the checklist's categories: found/not-found
precision and recall per category, and span-overlap F1: characters quoted by the report
that lie in CUAD's annotated clauses, micro-averaged (a clause quoted where none exists
costs precision, one missed costs recall).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA, need_data  # noqa: E402

PRINCIPAL = "benchmark-legal"


def pick(cuad_dir: Path, holdout: bool, n: int, max_chars: int) -> list[dict]:
    from legal.cuad import contracts, is_holdout

    out = [c for c in contracts(cuad_dir) if is_holdout(c["slug"]) == holdout and len(c["text"]) <= max_chars]
    return sorted(out, key=lambda c: c["slug"])[:n]


def gold_spans(contract: dict, category_name: str) -> list[tuple[int, int]]:
    from legal.cuad import clauses, locate

    return [s for s in (locate(contract["text"], c) for c in clauses(contract, category_name)) if s]


def _chars(spans) -> set[int]:
    return {i for s, e in spans for i in range(s, e)}


def evaluate(runs: list[tuple[dict, dict]], threshold: float, checklist) -> dict:
    """runs: (contract with its gold characters per category, {category id: ranked [(score, Segment)]})."""
    from shared.analysis.analyzer import quoted

    hit = pred = gold = 0
    det = {c.id: {"tp": 0, "fp": 0, "fn": 0} for c in checklist.categories}
    for contract, ranked in runs:
        for c in checklist.categories:
            g = contract["gold"][c.id]
            p = _chars((s.start, s.end) for s in quoted(ranked[c.id], threshold))
            hit, pred, gold = hit + len(p & g), pred + len(p), gold + len(g)
            d = det[c.id]
            d["tp"] += bool(p) and bool(g)
            d["fp"] += bool(p) and not g
            d["fn"] += not p and bool(g)
    precision, recall = hit / pred if pred else 0.0, hit / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tp, fp, fn = (sum(d[k] for d in det.values()) for k in ("tp", "fp", "fn"))
    return {"span_f1": f1, "span_precision": precision, "span_recall": recall, "threshold": threshold,
            "found_precision": tp / (tp + fp) if tp + fp else 0.0, "found_recall": tp / (tp + fn) if tp + fn else 0.0,
            "per_category": det}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contracts", type=int, default=6, help="held-out contracts evaluated")
    ap.add_argument("--calibration", type=int, default=4, help="training-side contracts that set each mode's threshold")
    ap.add_argument("--max-chars", type=int, default=20000, help="skip longer contracts (fine-tuned-only reads every segment)")
    ap.add_argument("--adapter", help="registered legal adapter version (default: promoted, else newest)")
    args = ap.parse_args()
    need_data()

    from assistants.domains import settings_for
    from shared.analysis import Checklist
    from shared.analysis.upload import UploadError, accept_upload, ingest_upload
    from shared.finetune.registry import AdapterRegistry
    from shared.finetune.serving import PromotedAdapter
    from shared.runtime import Runtime

    settings = settings_for("legal")
    registry = AdapterRegistry(settings.state_dir, "legal")
    versions = registry.versions()
    version = args.adapter or registry.promoted_version() or (versions[-1].version if versions else None)
    if version is None:
        raise SystemExit(f"no legal adapter registered under {settings.state_dir}: run `assistants train legal` first")
    adapter = registry.get(version)
    rt = Runtime(settings)
    checklist = Checklist.for_settings(settings)
    loader = PromotedAdapter(settings)
    tuned, base = loader.load(adapter), loader.load(None)
    cuad = DATA / "legal" / "cuad"
    # A few spare contracts stand in for any the upload check refuses.
    sets = {"calibration": pick(cuad, False, args.calibration + 2, args.max_chars),
            "test": pick(cuad, True, args.contracts + 2, args.max_chars)}
    tmp = Path(tempfile.mkdtemp(prefix="legal-bench-"))
    doc_ids = {}
    for name, contracts in sets.items():
        for contract in list(contracts):
            path = tmp / f"{contract['slug'][:80]}.txt"
            path.write_text(contract["text"], encoding="utf-8")
            # Located once here, not at every threshold the calibration tries.
            contract["gold"] = {c.id: _chars(gold_spans(contract, c.name)) for c in checklist.categories}
            try:
                doc_ids[contract["slug"]] = ingest_upload(rt, PRINCIPAL, path, accept_upload(settings, checklist, path))
            except UploadError as e:  # what a user would be told; counted, not hidden
                print(f"refused ({name}): {e}", file=sys.stderr)
                contracts.remove(contract)
    sets = {"calibration": sets["calibration"][:args.calibration], "test": sets["test"][:args.contracts]}
    print(f"adapter legal/{version}; {len(sets['test'])} held-out contracts, {len(sets['calibration'])} for calibration; "
          f"{len(checklist.categories)} categories", file=sys.stderr)

    modes = {"hybrid": (tuned, True), "rag_only": (base, True), "ft_only": (tuned, False)}
    results = {}
    for mode, (gen, use_retrieval) in modes.items():
        analyzer = rt.clause_analyzer(checklist, generator=gen, use_retrieval=use_retrieval, show_bar=True)
        runs: dict[str, list] = {}
        t0 = time.perf_counter()
        for name, contracts in sets.items():
            runs[name] = []
            for contract in contracts:
                report = analyzer.analyse(doc_ids[contract["slug"]], contract["slug"], contract["text"], principal=PRINCIPAL)
                runs[name].append((contract, {f.category.id: f.ranked for f in report.findings}))
        seconds = time.perf_counter() - t0
        grid = [round(0.2 + 0.02 * i, 2) for i in range(36)]
        threshold = max(grid, key=lambda t: evaluate(runs["calibration"], t, checklist)["span_f1"])
        results[mode] = {**evaluate(runs["test"], threshold, checklist), "seconds": round(seconds, 1)}
        r = results[mode]
        print(f"{mode:9s} span F1 {r['span_f1']:.3f} (P {r['span_precision']:.2f} R {r['span_recall']:.2f}) · found P "
              f"{r['found_precision']:.2f} R {r['found_recall']:.2f} · threshold {threshold} · {seconds:.0f} s", file=sys.stderr)

    print("\nper category (held-out): found-clause tp/fp/fn by mode")
    for c in checklist.categories:
        cells = "  ".join(f"{m} {d['tp']}/{d['fp']}/{d['fn']}" for m, d in ((m, results[m]["per_category"][c.id]) for m in modes))
        print(f"  {c.name:30s} {cells}")
    best_single = max(results["rag_only"]["span_f1"], results["ft_only"]["span_f1"])
    winner = max(results, key=lambda m: results[m]["span_f1"])
    print(f"\nwinner: {winner}; hybrid vs the better single approach: {results['hybrid']['span_f1'] - best_single:+.3f}")
    out = ROOT / "var" / "bench" / "legal_clauses.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"adapter": version, "contracts": [c["slug"] for c in sets["test"]], "results": results}, indent=1))
    rt.close()
    print(f"RESULT clause_f1_hybrid={results['hybrid']['span_f1']:.3f} clause_f1_rag_only={results['rag_only']['span_f1']:.3f} "
          f"clause_f1_ft_only={results['ft_only']['span_f1']:.3f}")


if __name__ == "__main__":
    main()

"""``assistants eval bench``: a domain's benchmarks in every mode, scored per item."""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean

from .. import plugins
from ..settings import BenchmarkSettings, ConfigError, Settings
from . import datasets, metrics
from .datasets import Dataset, Item
from .modes import Mode, load_modes

PRINCIPAL = "eval-bench"
ANSWER_TOKENS = 64  # free-text benchmark answers are a figure or a phrase


def shared_data_dir(settings: Settings) -> Path:
    """``ASSISTANTS_SHARED_DATA``, else ``../shared/data`` beside the project."""
    env = os.environ.get("ASSISTANTS_SHARED_DATA")
    return Path(env) if env else Path(settings.domain.root).resolve().parent.parent / "shared" / "data"


def data_file(settings: Settings, spec: BenchmarkSettings, override: Path | None = None) -> Path:
    """The file a benchmark reads: ``override``, else its shared data, else its sample."""
    if override is not None:
        return Path(override)
    if spec.data:
        shared = shared_data_dir(settings) / spec.data
        if shared.exists() or any(shared.parent.glob(shared.name)):
            return shared
    if spec.sample:
        return Path(settings.domain.root) / spec.sample
    raise ConfigError(f"benchmark data {spec.data} not found under {shared_data_dir(settings)} and no sample set")


def load(settings: Settings, spec: BenchmarkSettings, override: Path | None = None) -> tuple[Dataset, Path]:
    path = data_file(settings, spec, override)
    context = path.parent / spec.context if spec.context else None
    source = path
    if spec.importer:  # e.g. MedQuAD -> held-out cases: read what the importer writes
        from ..ingest.importers import convert

        source = Path(settings.state_dir) / "eval" / f"{settings.domain.name}-{path.name}.{spec.format}.jsonl"
        convert(plugins.lookup(plugins.IMPORTER, spec.importer), path, source)
    return datasets.read(spec.format, source, context), path


@dataclass
class Run:
    domain: str
    config: dict
    scores: dict = field(default_factory=dict)        # {benchmark: {mode: {metric: value}}}
    items: list[dict] = field(default_factory=list)   # per item and mode
    skipped: dict = field(default_factory=dict)       # {benchmark: {mode: reason}}


class BenchRunner:
    def __init__(self, runtime, progress: bool = True):
        self.rt, self.settings, self.progress = runtime, runtime.settings, progress

    # -- retrieval corpora --------------------------------------------------------------
    def corpus_runtime(self, name: str, data: Dataset):
        """A runtime over the benchmark's own passages (its collection, refreshed to exactly
        this subset) when the format has them, else over the domain's corpus."""
        from ..runtime import Runtime

        if not data.passages:
            return self.rt
        s = self.settings
        collection = f"{s.domain.name}_eval_{name}"[:31]
        es = s.model_copy(update={"domain": s.domain.model_copy(update={"name": collection})})
        rt = Runtime(es, db=self.rt.db)
        path = Path(s.state_dir) / "eval" / f"{collection}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for p in data.passages:
                f.write(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n")
        summary = rt.ingestor().run([path], prune=True, progress=self.progress)
        if summary.failed:
            raise ConfigError(f"benchmark corpus {name}: {summary.failed[0][1]}")
        return rt

    def engine_for(self, rt, mode: Mode):
        """The chat engine of ``mode`` over ``rt``'s corpus: retrieval on or off, the mode's
        model pinned, short answers, no tools (a benchmark question about "the return on
        equity" is about its documents, not the asker's portfolio)."""
        from ..runtime import Runtime
        from ..settings import ToolsSettings

        s = rt.settings
        es = s.model_copy(update={
            "domain": s.domain.model_copy(update={"approach": "hybrid" if mode.retrieval else "finetune"}),
            "generation": s.generation.model_copy(update={"max_new_tokens": ANSWER_TOKENS}),
            "tools": ToolsSettings()})
        return Runtime(es, db=self.rt.db).chat_engine(mode.generator)

    # -- one item in one mode -------------------------------------------------------------
    def score(self, item: Item, mode: Mode, engine, system: str, score_answer=None) -> dict:
        """``score_answer(answer, item)``: the benchmark format's scorer of a free-text answer
        (unset: normalised exact match and token F1)."""
        from ..chat import prompt

        s = self.settings
        k = s.retrieval.top_k
        out: dict = {"id": item.id, "task": item.task}

        def ranked(passages) -> None:
            if item.gold:
                out.update(metrics.retrieval([p.doc_id.rsplit("#", 1)[-1] for p in passages], item.gold, k))

        if item.kind == "condition":
            return {**out, **self.conditions(item, mode, engine, system)}
        if item.kind == "answer":
            turn = engine.ask(item.question, principal=PRINCIPAL)
            out.update(score_answer(turn.answer, item) if score_answer else
                       metrics.exact_and_f1(turn.answer, item.answer))
            out.update({"answer": turn.answer, "gold": item.answer,
                        "relevancy": metrics.relevancy(self.rt.embedding, item.question, turn.answer)})
            if mode.retrieval:
                ranked(turn.passages)
                out["faithfulness"] = metrics.faithfulness(turn.answer, [p.to_dict() for p in turn.passages if p.in_prompt])
            return out
        passages = []
        if mode.retrieval or item.kind == "retrieval":
            passages = engine.retrieve(item.query or item.question, PRINCIPAL)
            ranked(passages)
            passages = engine.relevant(passages)
        if item.kind == "choice":
            plan = prompt.build(mode.generator, system, [], item.question, passages, 1)
            logprobs = mode.generator.choice_logprobs(plan.messages, item.choices)
            pred = item.choices[max(range(len(item.choices)), key=logprobs.__getitem__)]
            out.update({"accuracy": float(pred.lower() == str(item.answer).lower()), "prediction": pred,
                        "gold": item.answer})
        return out

    def conditions(self, item: Item, mode: Mode, engine, system: str) -> dict:
        """top3: the dataset's condition among the first three named, by the model (base,
        adapter) or by retrieval over the condition descriptions (rag: no model involved)."""
        from ..chat import prompt

        if mode.retrieval:
            ranked = list(dict.fromkeys(p.doc_id.rsplit("#", 1)[-1] for p in engine.retrieve(item.query, PRINCIPAL)))
            return {"top3": float(bool(set(ranked[:3]) & set(item.gold))), "prediction": ", ".join(ranked[:3]),
                    "gold": item.answer}
        plan = prompt.build(mode.generator, system, [], item.question, [], ANSWER_TOKENS)
        said = mode.generator.generate(plan.messages, max_tokens=ANSWER_TOKENS)
        return {"top3": metrics.top_k_named(said, str(item.answer)), "prediction": said, "gold": item.answer}

    # -- a whole run ------------------------------------------------------------------------
    def run(self, benchmarks: dict[str, BenchmarkSettings], modes: list[str] | None, limit: int | None,
            override: Path | None = None, ci: bool = False) -> Run:
        from tqdm import tqdm

        run = Run(self.settings.domain.name, {"modes": modes, "limit": limit, "ci": ci, "benchmarks": {}})
        planned = []
        for name, spec in benchmarks.items():
            data, path = load(self.settings, spec, override)
            n = spec.ci_limit if ci else limit
            data = datasets.subset(data, n)
            wanted = [m for m in (modes or spec.modes) if m in spec.modes]
            source = "file" if override else "shared" if shared_data_dir(self.settings).resolve() in path.resolve().parents else "sample"
            run.config["benchmarks"][name] = {"format": spec.format, "data": str(path), "source": source,
                                              "items": len(data.items),
                                              "passages": len(data.passages), "modes": wanted}
            planned.append((name, spec, data, wanted))
        loaded = {m.name: m for m in load_modes(self.settings, sorted({m for *_, w in planned for m in w}))}
        run.config["generators"] = {m.name: m.generator.describe() for m in loaded.values() if m.generator}
        total = sum(len(d.items) * sum(loaded[m].generator is not None for m in w) for _, _, d, w in planned)
        bar = tqdm(total=total, desc=f"eval {self.settings.domain.name}", unit="item", disable=not self.progress)
        for name, spec, data, wanted in planned:
            rt = self.corpus_runtime(name, data)
            for mode_name in wanted:
                mode = loaded[mode_name]
                if mode.generator is None:
                    run.skipped.setdefault(name, {})[mode_name] = mode.skipped
                    continue
                t0, engine, rows = time.perf_counter(), self.engine_for(rt, mode), []
                system = self.settings.system_message(spec.system, spec.system_prompt)
                scorer = plugins.benchmark_format_named(spec.format).score_answer
                for item in data.items:
                    bar.set_postfix_str(f"{name}/{mode_name}")
                    rows.append(self.score(item, mode, engine, system, scorer))
                    bar.update()
                run.scores.setdefault(name, {})[mode_name] = aggregate(rows, time.perf_counter() - t0)
                run.items += [{"benchmark": name, "mode": mode_name, **r} for r in rows]
        bar.close()
        return run


# Per-item fields that are not scores (a TAT-QA gold answer can be a number).
NOT_SCORES = frozenset({"id", "task", "answer", "gold", "prediction"})


def aggregate(rows: list[dict], seconds: float) -> dict:
    """Means of every numeric per-item score (None = not applicable), per-task accuracy."""
    sums: dict[str, list[float]] = defaultdict(list)
    tasks: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for key, value in r.items():
            if key not in NOT_SCORES and isinstance(value, (int, float)) and not isinstance(value, bool):
                sums[key].append(float(value))
        if r.get("task") and "accuracy" in r:
            tasks[r["task"]].append(r["accuracy"])
    out = {k: round(mean(v), 4) for k, v in sums.items() if v}
    out.update({"n": len(rows), "seconds": round(seconds, 1)})
    if len(tasks) > 1:
        out["tasks"] = {t: round(mean(v), 4) for t, v in sorted(tasks.items())}
    return out


def below_thresholds(run: Run, benchmarks: dict[str, BenchmarkSettings]) -> list[str]:
    """Each recorded threshold the run's scores fall short of (or could not be measured).
    Thresholds were recorded on the shared data's CI subset; a sample run is not held to them."""
    out = []
    for name, spec in benchmarks.items():
        if run.config["benchmarks"][name]["source"] != "shared":
            continue
        for key, least in spec.thresholds.items():
            mode, metric = key.split(".", 1)
            got = run.scores.get(name, {}).get(mode, {}).get(metric)
            if got is None:
                out.append(f"{name} {key}: not measured ({run.skipped.get(name, {}).get(mode, 'mode not run')})")
            elif got < least:
                out.append(f"{name} {key} = {got:.3f}, below the recorded threshold {least:.3f}")
    return out

"""Legal's benchmark formats (registered on import; config.yaml names this module under
``domain.plugins``).

- ``legalbench``: LegalBench Yes/No tasks (CUAD clause categories, overruling, diversity
  jurisdiction), each asked as the clause judge's own prompt (``judge_prompt``), so the base
  model and the adapter are measured on what the analyzer asks them."""
from __future__ import annotations

from pathlib import Path

from shared.analysis.judge import ANSWERS, judge_prompt
from shared.evaluation.datasets import Dataset, Item, need, rows
from shared.plugins import benchmark_format
from shared.settings import ConfigError

# Tasks without a question field state it once here (LegalBench's task descriptions).
LEGALBENCH_QUESTIONS = {
    "overruling": "Does this sentence overrule a previous case?",
    "diversity": "Is there federal diversity jurisdiction: are the parties citizens of different states and is the "
                 "amount in controversy over $75,000?",
}


@benchmark_format("legalbench")
def legalbench(path: Path, context: Path | None = None) -> Dataset:
    items = []
    for r in rows(path):
        need(r, ("id", "task", "text", "label"), path)
        question = r.get("question") or LEGALBENCH_QUESTIONS.get(r["task"].split("_")[0])
        if not question:
            raise ConfigError(f"{path}: task {r['task']} has no question field and no known description")
        # The clause judgement's own prompt: what the legal assistant (and its adapter) asks.
        items.append(Item(r["id"], judge_prompt(r["text"], question), "choice", r["label"], list(ANSWERS),
                          task=r["task"], query=r["text"]))
    return Dataset("legalbench", items)

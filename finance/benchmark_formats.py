"""Finance's benchmark formats (registered on import; config.yaml names this module under
``domain.plugins``).

- ``tatqa``: TAT-QA questions over annual-report tables and paragraphs (the contexts file
  beside the questions is the RAG corpus); free-text answers scored by EM/F1 with scale,
  as TAT-QA's own evaluation does (finance/tatqa_scoring.py).
- ``fiqa``: FiQA questions whose community answer is the passage to retrieve (hit@k, MRR)."""
from __future__ import annotations

from pathlib import Path

from shared.evaluation.datasets import Dataset, Item, Passage, need, rows
from shared.plugins import benchmark_format
from shared.settings import ConfigError

from .tatqa_scoring import score_answer


def _table(cells: list[list[str]]) -> str:
    return "\n".join(" | ".join(c.strip() for c in row) for row in cells if any(c.strip() for c in row))


@benchmark_format("tatqa", score_answer=score_answer)
def tatqa(path: Path, context: Path | None = None) -> Dataset:
    if context is None or not context.is_file():
        raise ConfigError(f"tatqa needs its contexts file (benchmark `context`); got {context}")
    passages = []
    for r in rows(context):
        need(r, ("id", "table", "paragraphs"), context)
        passages.append(Passage(r["id"], "Annual report extract", _table(r["table"]) + "\n\n" + "\n".join(r["paragraphs"])))
    known = {p.id for p in passages}
    items = []
    for r in rows(path):
        need(r, ("id", "context_id", "question", "answer"), path)
        if r["context_id"] not in known:
            raise ConfigError(f"{path}: question {r['id']} refers to context {r['context_id']}, not in {context}")
        items.append(Item(r["id"], r["question"], "answer", r["answer"], scale=r.get("scale") or "",
                          gold=[r["context_id"]], task=r.get("answer_type", "")))
    return Dataset("tatqa", items, passages)


@benchmark_format("fiqa")
def fiqa(path: Path, context: Path | None = None) -> Dataset:
    items, passages = [], []
    for r in rows(path):
        need(r, ("id", "question", "answer"), path)
        items.append(Item(r["id"], r["question"], "retrieval", gold=[r["id"]]))
        passages.append(Passage(r["id"], "Community answer", r["answer"]))
    return Dataset("fiqa", items, passages)

"""Readers of the benchmark formats (see ../shared/data/README.md). Each turns a file into
``Item``s (what is asked, how it is scored) and, where the format has them, the
``Passage``s that hold each answer, which the RAG modes retrieve from and which make
hit@k / MRR measurable. Any file of the same format works (another split, your own set)."""
from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..analysis.judge import ANSWERS, judge_prompt
from ..ingest.importers import DatasetError, read_records
from ..settings import ConfigError


@dataclass
class Item:
    id: str
    question: str                  # the whole prompt text (with options or the clause to judge)
    kind: str                      # "choice" (accuracy) | "answer" (EM/F1) | "retrieval" (hit@k, MRR)
                                   # | "condition" (top3: the gold among the first 3 named)
    answer: object = None          # the label for choice; the gold answer for answer items
    choices: list[str] = field(default_factory=list)
    scale: str = ""                # TAT-QA: "", thousand, million, billion, percent
    gold: list[str] = field(default_factory=list)  # ids of passages holding the answer
    task: str = ""                 # sub-task (LegalBench), reported separately
    query: str = ""                # what retrieval searches (default: the question)


@dataclass
class Passage:
    id: str
    title: str
    text: str


@dataclass
class Dataset:
    name: str
    items: list[Item]
    passages: list[Passage] = field(default_factory=list)


def _rows(path: Path) -> Iterator[dict]:
    try:
        yield from read_records(path)
    except DatasetError as e:
        raise ConfigError(str(e)) from None


def _need(row: dict, keys: tuple[str, ...], path: Path) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise ConfigError(f"{path}: record {row.get('id', '?')} lacks {', '.join(missing)} (is this the right format?)")


def pubmedqa(path: Path, context: Path | None = None) -> Dataset:
    items, passages = [], []
    for r in _rows(path):
        _need(r, ("id", "question", "contexts", "final_decision"), path)
        q = f"{r['question']}\nAnswer yes, no or maybe."
        items.append(Item(r["id"], q, "choice", r["final_decision"], ["yes", "no", "maybe"], gold=[r["id"]],
                          query=r["question"]))
        passages.append(Passage(r["id"], f"PubMed {r.get('pmid', r['id'])}", "\n".join(r["contexts"])))
    return Dataset("pubmedqa", items, passages)


def mmlu(path: Path, context: Path | None = None) -> Dataset:
    items = []
    for r in _rows(path):
        _need(r, ("id", "question", "options", "answer"), path)
        letters = sorted(r["options"])
        options = "\n".join(f"{k}. {r['options'][k]}" for k in letters)
        q = f"{r['question']}\n{options}\nAnswer with the letter of the correct option."
        items.append(Item(r["id"], q, "choice", r["answer"], letters, query=r["question"]))
    return Dataset("mmlu", items)


# Tasks without a question field state it once here (LegalBench's task descriptions).
_LEGALBENCH_QUESTIONS = {
    "overruling": "Does this sentence overrule a previous case?",
    "diversity": "Is there federal diversity jurisdiction: are the parties citizens of different states and is the "
                 "amount in controversy over $75,000?",
}


def legalbench(path: Path, context: Path | None = None) -> Dataset:
    items = []
    for r in _rows(path):
        _need(r, ("id", "task", "text", "label"), path)
        question = r.get("question") or _LEGALBENCH_QUESTIONS.get(r["task"].split("_")[0])
        if not question:
            raise ConfigError(f"{path}: task {r['task']} has no question field and no known description")
        # The clause judgement's own prompt: what the legal assistant (and its adapter) asks.
        items.append(Item(r["id"], judge_prompt(r["text"], question), "choice", r["label"], list(ANSWERS),
                          task=r["task"], query=r["text"]))
    return Dataset("legalbench", items)


def _table(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(c.strip() for c in row) for row in rows if any(c.strip() for c in row))


def tatqa(path: Path, context: Path | None = None) -> Dataset:
    if context is None or not context.is_file():
        raise ConfigError(f"tatqa needs its contexts file (benchmark `context`); got {context}")
    passages = []
    for r in _rows(context):
        _need(r, ("id", "table", "paragraphs"), context)
        passages.append(Passage(r["id"], "Annual report extract", _table(r["table"]) + "\n\n" + "\n".join(r["paragraphs"])))
    known = {p.id for p in passages}
    items = []
    for r in _rows(path):
        _need(r, ("id", "context_id", "question", "answer"), path)
        if r["context_id"] not in known:
            raise ConfigError(f"{path}: question {r['id']} refers to context {r['context_id']}, not in {context}")
        items.append(Item(r["id"], r["question"], "answer", r["answer"], scale=r.get("scale") or "",
                          gold=[r["context_id"]], task=r.get("answer_type", "")))
    return Dataset("tatqa", items, passages)


def fiqa(path: Path, context: Path | None = None) -> Dataset:
    items, passages = [], []
    for r in _rows(path):
        _need(r, ("id", "question", "answer"), path)
        items.append(Item(r["id"], r["question"], "retrieval", gold=[r["id"]]))
        passages.append(Passage(r["id"], "Community answer", r["answer"]))
    return Dataset("fiqa", items, passages)


CONDITIONS_ASK = "List the three most likely conditions, one per line, most likely first."


def conditions(path: Path, context: Path | None = None) -> Dataset:
    """Described symptoms -> the condition (top-3 of a ranked list). Rows of kind
    ``condition`` (id, title, text) are the corpus; rows of kind ``case`` (id, text: the
    description, condition, gold: condition ids) the items. Written by a domain's importer."""
    items, passages = [], []
    for r in _rows(path):
        _need(r, ("id", "kind", "text"), path)
        if r["kind"] == "condition":
            _need(r, ("title",), path)
            passages.append(Passage(r["id"], r["title"], r["text"]))
        else:
            _need(r, ("condition", "gold"), path)
            items.append(Item(r["id"], f"{r['text']}\n{CONDITIONS_ASK}", "condition", r["condition"],
                              gold=list(r["gold"]), query=r["text"]))
    return Dataset("conditions", items, passages)


READERS: dict[str, Callable[[Path, Path | None], Dataset]] = {
    "pubmedqa": pubmedqa, "mmlu": mmlu, "legalbench": legalbench, "tatqa": tatqa, "fiqa": fiqa,
    "conditions": conditions,
}


def read(fmt: str, pattern: str | Path, context: Path | None = None) -> Dataset:
    """One file, or every file a glob matches (LegalBench keeps one file per task)."""
    files = sorted(Path(p) for p in glob.glob(str(pattern))) if any(c in str(pattern) for c in "*?[") else [Path(pattern)]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError(f"no benchmark data at {pattern}")
    parts = [READERS[fmt](f, context) for f in files]
    return Dataset(fmt, [i for p in parts for i in p.items], [x for p in parts for x in p.passages])


def _order(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def subset(data: Dataset, limit: int | None, corpus_min: int = 64) -> Dataset:
    """A fixed, spread subset: the first ``limit`` items by a hash of their id (the same
    items every run, drawn across all tasks), plus a retrieval corpus of their gold
    passages and distractors in the same order, at least ``corpus_min`` or 4 per item."""
    items = sorted(data.items, key=lambda i: _order(i.id))[:limit] if limit else list(data.items)
    if not data.passages:
        return Dataset(data.name, items)
    gold = {g for i in items for g in i.gold}
    size = max(len(gold), 4 * len(items), corpus_min) if limit else len(data.passages)
    rest = sorted((p for p in data.passages if p.id not in gold), key=lambda p: _order(p.id))
    passages = [p for p in data.passages if p.id in gold] + rest[: max(0, size - len(gold))]
    return Dataset(data.name, items, passages)

"""What a benchmark format reads a file into, and the generic formats (see
../shared/data/README.md). A format turns a file into ``Item``s (what is asked, how it is
scored) and, where the format has them, the ``Passage``s that hold each answer, which the
RAG modes retrieve from and which make hit@k / MRR measurable. Any file of the same format
works (another split, your own set).

Formats are plugins (shared/plugins.py): the generic ones register here (``mmlu``); a
domain's own register in its plugin modules (legal: ``legalbench``; finance: ``tatqa``,
``fiqa``; medical: ``pubmedqa``, ``conditions``)."""
from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .. import plugins
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


def rows(path: Path) -> Iterator[dict]:
    """The records of a benchmark file (JSONL, JSON, CSV; gzipped too); a bad file is a ConfigError."""
    try:
        yield from read_records(path)
    except DatasetError as e:
        raise ConfigError(str(e)) from None


def need(row: dict, keys: tuple[str, ...], path: Path) -> None:
    """A record lacking one of ``keys`` fails, naming the file, the record and the keys."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise ConfigError(f"{path}: record {row.get('id', '?')} lacks {', '.join(missing)} (is this the right format?)")


def mmlu(path: Path, context: Path | None = None) -> Dataset:
    items = []
    for r in rows(path):
        need(r, ("id", "question", "options", "answer"), path)
        letters = sorted(r["options"])
        options = "\n".join(f"{k}. {r['options'][k]}" for k in letters)
        q = f"{r['question']}\n{options}\nAnswer with the letter of the correct option."
        items.append(Item(r["id"], q, "choice", r["answer"], letters, query=r["question"]))
    return Dataset("mmlu", items)


plugins.benchmark_format("mmlu")(mmlu)


def read(fmt: str, pattern: str | Path, context: Path | None = None) -> Dataset:
    """One file, or every file a glob matches (LegalBench keeps one file per task), read by
    the benchmark format registered as ``fmt``."""
    reader = plugins.benchmark_format_named(fmt).read
    files = sorted(Path(p) for p in glob.glob(str(pattern))) if any(c in str(pattern) for c in "*?[") else [Path(pattern)]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError(f"no benchmark data at {pattern}")
    parts = [reader(f, context) for f in files]
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

"""Instruction data: load -> map to chat messages -> clean -> de-duplicate (exact and
near) -> scrub PII -> split by group (no group on both sides) -> augment (train only),
with a data card that accounts for every example dropped."""
from __future__ import annotations

import hashlib
import html
import json
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .. import candidates  # noqa: F401 - registers the core's training data source `feedback`
from .. import plugins
from ..ingest.importers import DatasetError, read_records
from ..pii import scrub
from ..text import words_only
from .config import DataArgs, DataSource


@dataclass
class Example:
    question: str
    answer: str
    group: str
    source: str
    augmented: bool = False

    def messages(self, system: str | None) -> list[dict]:
        head = [{"role": "system", "content": system}] if system else []
        return head + [{"role": "user", "content": self.question}, {"role": "assistant", "content": self.answer}]


@dataclass
class DataCard:
    steps: list[tuple[str, int]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dropped_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    pii: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    changed: dict[str, int] = field(default_factory=dict)  # examples each cleaning rule changed
    sizes: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    sources: dict[str, dict[str, int]] = field(default_factory=dict)
    dataset_hash: str = ""

    def drop(self, reason: str, ex: Example) -> None:
        self.dropped[reason] += 1
        if len(self.dropped_examples[reason]) < 3:
            self.dropped_examples[reason].append(ex.question[:120])

    def to_dict(self) -> dict:
        return {"steps": self.steps, "dropped": dict(self.dropped), "dropped_examples": dict(self.dropped_examples),
                "pii_scrubbed": dict(self.pii), "cleaning_rules": self.changed, "split_sizes": self.sizes, "split_groups": self.groups,
                "sources": self.sources, "dataset_hash": self.dataset_hash}

    def markdown(self) -> str:
        lines = ["# Data card", "", f"Dataset hash: `{self.dataset_hash}`", "", "| step | examples |", "|---|---|"]
        lines += [f"| {name} | {n} |" for name, n in self.steps]
        lines += ["", "| cleaning rule | examples changed |", "|---|---|"]
        lines += [f"| {rule} | {n} |" for rule, n in self.changed.items()]
        lines += ["", "| dropped because | count | e.g. |", "|---|---|---|"]
        lines += [f"| {r} | {n} | {'; '.join(self.dropped_examples[r])[:200]} |" for r, n in self.dropped.items()]
        lines += ["", f"PII scrubbed: {dict(self.pii) or 'none'}", "",
                  f"Split: {self.sizes} examples, {self.groups} groups (no group on both sides).", "",
                  "| source | train | validation |", "|---|---|---|"]
        lines += [f"| {src} | {n.get('train', 0)} | {n.get('validation', 0)} |" for src, n in self.sources.items()]
        return "\n".join(lines) + "\n"


# -- load ---------------------------------------------------------------------------
def _rows(src: DataSource, base: Path) -> Iterator[dict]:
    path = src.path
    if src.records:
        yield from plugins.lookup(plugins.TRAINING_SOURCE, src.records)((base / path).resolve())
        return
    if path.startswith("hf:"):
        from datasets import load_dataset

        name, _, split = path[3:].partition(":")
        yield from load_dataset(name, split=split or "train")
        return
    yield from read_records((base / path).resolve())


def _source_exists(src: DataSource, base: Path) -> bool:
    return src.path.startswith("hf:") or (base / src.path).exists()


def load(sources: Iterable[DataSource], base: Path) -> Iterator[Example]:
    for src in sources:
        if src.optional and not _source_exists(src, base):
            continue
        for i, row in enumerate(islice(_rows(src, base), src.limit)):
            q, a = row.get(src.question), row.get(src.answer)
            if src.context and row.get(src.context):
                ctx = row[src.context]
                ctx = "\n".join(ctx) if isinstance(ctx, list) else str(ctx)
                q = f"{ctx}\n\nQuestion: {q}"
            group = str(row.get(src.group) or f"{src.path}#{i}") if src.group else f"{src.path}#{i}"
            yield Example("" if q is None else str(q), "" if a is None else str(a), group.strip().lower(), src.path)


# -- clean --------------------------------------------------------------------------
_TAG = re.compile(r"<[^>]{1,200}>")
_WS = re.compile(r"[^\S\n]+")  # any whitespace but newlines (incl. the \xa0 of &nbsp;)


def strip_markup(text: str) -> str:
    """``text`` without HTML tags and entities, spaces collapsed, at most one blank line in a row
    (answers scraped from web pages); not ``shared.text.clean_text``, which keeps markup."""
    text = html.unescape(_TAG.sub(" ", text))
    text = _WS.sub(" ", text)
    return re.sub(r"\n\s*\n+", "\n\n", "\n".join(line.strip() for line in text.split("\n"))).strip()


def clean_answers(examples: list[Example], rules: list[str], card: DataCard) -> None:
    """Each rule (a registered cleaning rule, by name) rewrites answers in place; the card counts
    how many each one changed, so a rule that silently does nothing (or everything) shows."""
    for name in rules:
        rule, changed = plugins.lookup(plugins.CLEANING_RULE, name), 0
        for ex in examples:
            new = rule(ex.question, ex.answer)
            if new != ex.answer:
                ex.answer, changed = new, changed + 1
        card.changed[name] = changed


def _is_text(s: str) -> bool:
    letters = sum(c.isalpha() for c in s)
    return letters >= 0.5 * len(s.replace(" ", "")) if s else False


# -- de-duplicate -------------------------------------------------------------------
_P = (1 << 61) - 1
_PERMS = 64
_BANDS = 16


def minhash(text: str, rng: np.random.Generator | None = None) -> np.ndarray:
    words = words_only(text).split()
    shingles = {" ".join(words[i:i + 3]) for i in range(max(1, len(words) - 2))}
    x = np.array([zlib.crc32(s.encode()) for s in shingles], dtype=np.uint64)
    a, b = _COEF
    return ((np.outer(x, a) + b) % _P).min(axis=0)


_COEF = tuple(np.random.default_rng(12345).integers(1, _P, size=(2, _PERMS), dtype=np.uint64))


def dedupe(examples: list[Example], threshold: float, card: DataCard) -> list[Example]:
    """Exact duplicates by normalised text; near-duplicates by MinHash with LSH banding
    (candidates share a band; kept only if the estimated Jaccard is below threshold)."""
    seen: set[str] = set()
    buckets: dict[tuple, list[int]] = defaultdict(list)
    sigs: list[np.ndarray] = []
    kept: list[Example] = []
    rows = _PERMS // _BANDS
    for ex in examples:
        key = hashlib.sha1(words_only(ex.question + " || " + ex.answer).encode()).hexdigest()
        if key in seen:
            card.drop("exact duplicate", ex)
            continue
        seen.add(key)
        sig = minhash(ex.question + " " + ex.answer)
        bands = [(i, sig[i * rows:(i + 1) * rows].tobytes()) for i in range(_BANDS)]
        candidates = {j for band in bands for j in buckets.get(band, ())}
        if any(float(np.mean(sigs[j] == sig)) >= threshold for j in candidates):
            card.drop("near duplicate", ex)
            continue
        for band in bands:
            buckets[band].append(len(sigs))
        sigs.append(sig)
        kept.append(ex)
    return kept


# -- split and augment ----------------------------------------------------------------
def group_hash(group: str, seed: int) -> float:
    """A group's place in [0, 1): the lowest ones go to validation."""
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:12], 16) / float(1 << 48)


def split(examples: list[Example], val_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """By group hash, so a group is wholly train or wholly validation (no leakage); at
    least one group goes each way when there are two or more."""
    groups = sorted({e.group for e in examples}, key=lambda g: group_hash(g, seed))
    n_val = min(max(1, round(len(groups) * val_fraction)), len(groups) - 1) if len(groups) > 1 else 0
    val_groups = set(groups[:n_val])
    return [e for e in examples if e.group not in val_groups], [e for e in examples if e.group in val_groups]


_REPHRASE = [
    (re.compile(r"^what (?:is|are) (.+?)\??$", re.IGNORECASE), ["Can you explain {0}?", "Tell me about {0}.", "What should I know about {0}?"]),
    (re.compile(r"^what are the symptoms of (.+?)\??$", re.IGNORECASE), ["How do I know if I have {0}?", "What signs point to {0}?"]),
    (re.compile(r"^how (?:to|do i|can i) (.+?)\??$", re.IGNORECASE), ["What is the way to {0}?", "Explain how to {0}."]),
]


def augment(examples: list[Example], seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    extra = []
    for ex in examples:
        for pattern, templates in _REPHRASE:
            m = pattern.match(ex.question.strip())
            if m:
                q = templates[int(rng.integers(len(templates)))].format(m.group(1))
                extra.append(Example(q, ex.answer, ex.group, ex.source, augmented=True))
                break
    return extra


# -- the pipeline ---------------------------------------------------------------------
def prepare(args: DataArgs, base: Path, system: str | None) -> tuple[list[dict], list[dict], DataCard]:
    """(train rows, validation rows, card); rows are ``{"prompt": [...], "completion": [...], "group"}``,
    TRL's conversational prompt-completion format, so the loss covers responses only."""
    card = DataCard()
    examples = list(load(args.sources, base))
    if not examples:
        raise DatasetError("no training examples: every data source is empty or absent")
    card.steps.append(("loaded", len(examples)))

    for ex in examples:
        ex.question, ex.answer = strip_markup(ex.question), strip_markup(ex.answer)
    clean_answers(examples, args.cleaners, card)
    cleaned = []
    for ex in examples:
        if not ex.question or len(ex.answer) < args.min_answer_chars:
            card.drop("empty", ex)
        elif len(ex.question) + len(ex.answer) > args.max_chars:
            card.drop("over-long", ex)
        elif not (_is_text(ex.question) and _is_text(ex.answer)):
            card.drop("not text", ex)
        else:
            cleaned.append(ex)
    card.steps.append(("cleaned", len(cleaned)))

    unique = dedupe(cleaned, args.near_duplicate_jaccard, card)
    card.steps.append(("de-duplicated", len(unique)))
    for ex in unique:
        ex.question, ex.answer = scrub(ex.question, card.pii), scrub(ex.answer, card.pii)
    card.steps.append(("PII scrubbed", len(unique)))

    train, val = split(unique, args.val_fraction, args.seed)
    if args.augment:
        extra = augment(train, args.seed)
        train = train + extra
        card.steps.append((f"augmented (+{len(extra)} train)", len(train) + len(val)))
    card.sizes = {"train": len(train), "validation": len(val)}
    for part, rows in (("train", train), ("validation", val)):
        for ex in rows:
            counts = card.sources.setdefault(ex.source, {})
            counts[part] = counts.get(part, 0) + 1
    card.groups = {"train": len({e.group for e in train}), "validation": len({e.group for e in val})}

    def row(ex: Example) -> dict:
        m = ex.messages(system)
        return {"prompt": m[:-1], "completion": m[-1:], "group": ex.group}

    train_rows, val_rows = [row(e) for e in train], [row(e) for e in val]
    digest = hashlib.sha256()
    for r in train_rows + [{"split": "validation"}] + val_rows:
        digest.update(json.dumps(r, sort_keys=True).encode())
    card.dataset_hash = digest.hexdigest()
    return train_rows, val_rows, card


def write(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

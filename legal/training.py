"""Training examples for the legal adapter, read through train.yaml's ``records`` hook.
Every clause judgement is the analyzer's own prompt (``judge_prompt``) answered "Yes" or
"No", so the adapter learns exactly what it is asked at run time. Nothing comes from the
benchmark hold-out (``legal.cuad.is_holdout``)."""
from __future__ import annotations

import hashlib
from itertools import zip_longest
from pathlib import Path
from typing import Iterator

from shared.analysis import Checklist
from shared.analysis.judge import judge_prompt
from shared.analysis.segments import split as segments
from shared.ingest.importers import read_records
from shared.plugins import training_source
from shared.text import words_only

from .cuad import clauses, contracts, holdout_contracts, is_holdout, locate

CHECKLIST = Path(__file__).with_name("clauses.yaml")
MAX_SPAN_CHARS = 900
"""Longer clauses are skipped: they would be truncated at the trainer's max_seq_length."""
EXCERPT_MARGIN = 250
"""Characters of context either side of the clause in an extraction example."""
MAX_QUOTE_CHARS = 300
"""Extraction answers are short clauses: the excerpt and the quote both fit max_seq_length."""
PRIVACY_RATE = 20
"""PrivacyQA is sorted by answer: one record in this many, by id hash, keeps both answers."""


def _hash(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _excerpt(text: str, start: int, end: int) -> str:
    """The clause with EXCERPT_MARGIN characters either side, without the words cut in half."""
    lo, hi = max(0, start - EXCERPT_MARGIN), min(len(text), end + EXCERPT_MARGIN)
    words = text[lo:hi].split()
    return " ".join(words[1 if lo else 0:len(words) - (hi < len(text))])


def _example(question: str, answer: str, group: str) -> dict:
    return {"question": question, "answer": answer, "group": group}


def holdout_text(cuad_dir: Path) -> str:
    """The hold-out contracts, normalised and joined, to test text against."""
    return "\n".join(words_only(c["text"]) for c in holdout_contracts(cuad_dir))


def _unseen(text: str, holdout: str) -> bool:
    """Not empty, and not in a hold-out contract: boilerplate shared with one (a governing
    law sentence, a signature block) would let the benchmark test on trained text."""
    norm = words_only(text)
    return bool(norm) and norm not in holdout


@training_source("cuad_examples")
def cuad_examples(path: Path) -> Iterator[dict]:
    """Per training contract and checklist category: each annotated clause -> "Yes", as
    many segments overlapping no clause of that category -> "No" (hash-ranked, so
    deterministic), and one extraction example per contract. Group: the contract."""
    categories = Checklist.load(CHECKLIST).categories
    holdout = holdout_text(path)
    for c in contracts(path):
        if is_holdout(c["slug"]):
            continue
        text, slug = c["text"], c["slug"]
        segs = [g for g in segments(text) if _unseen(g.text, holdout)]
        quotable = []
        for cat in categories:
            spans = [s for s in (locate(text, cl) for cl in clauses(c, cat.name)) if s]
            positives = [(s, e) for s, e in spans if e - s <= MAX_SPAN_CHARS and _unseen(text[s:e], holdout)]
            free = [g for g in segs if not any(g.start < e and s < g.end for s, e in spans)]
            negatives = sorted(free, key=lambda g: _hash(slug, cat.id, str(g.start)))[:len(positives)]
            for s, e in positives:
                yield _example(judge_prompt(text[s:e], cat.question), "Yes", slug)
            for g in negatives:
                yield _example(judge_prompt(g.text, cat.question), "No", slug)
            quotable += [(cat, s) for s in positives if s[1] - s[0] <= MAX_QUOTE_CHARS]
        if quotable:
            cat, (s, e) = min(quotable, key=lambda q: _hash(slug, q[0].id, str(q[1][0])))
            question = f"Excerpt: {_excerpt(text, s, e)}\n\nQuote the {cat.name} clause of this excerpt."
            yield _example(question, _squash(text[s:e]), slug)


@training_source("legalbench_examples")
def legalbench_examples(path: Path) -> Iterator[dict]:
    """LegalBench ``cuad_*`` items (``path``: the legalbench_dev folder) as judge prompts,
    taking one item from each task in turn so a limit still covers every task. Items whose
    text occurs in a hold-out contract (of the cuad folder beside legalbench_dev) are
    dropped. Group: a hash of the text."""
    holdout = holdout_text(Path(path).parent / "cuad")
    tasks = [read_records(f) for f in sorted(Path(path).glob("cuad_*.jsonl"))]
    for row in (r for turn in zip_longest(*tasks) for r in turn if r):
        if _unseen(row["text"], holdout):
            yield _example(judge_prompt(row["text"], row["question"]), row["label"], _hash(words_only(row["text"]))[:16])


@training_source("privacy_examples")
def privacy_examples(path: Path) -> Iterator[dict]:
    """PrivacyQA: does a policy clause answer a user's question. Group: the clause."""
    for row in read_records(path):
        if int(_hash(row["id"])[:8], 16) % PRIVACY_RATE == 0:
            question = f"Does this clause answer the question: {_squash(row['question']).rstrip('?')}?"
            answer = "Yes" if row["answer"] == "True" else "No"
            yield _example(judge_prompt(row["context"], question), answer, _hash(words_only(row["context"]))[:16])

"""Hooks of ``legal/labeling.yaml`` for ``assistants label legal``: CUAD contracts cut into
clause-sized passages (the pool), and a labeled passage as the analyzer's own yes/no
judge prompts (the training examples), so the adapter learns what it is asked at run time."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from shared.analysis import Checklist
from shared.analysis.judge import judge_prompt
from shared.analysis.segments import split as segments
from shared.labeling.pipeline import spec_labels, text_hash
from shared.plugins import labeling_hook

from .cuad import clauses, contracts, is_holdout, locate
from .training import CHECKLIST

SPEC = Path(__file__).with_name("labeling.yaml")
MIN_COVER = 0.5
"""A passage is a category's when one of its annotated clauses covers at least half of the
shorter of the two: a clause's first words spilling into the next passage do not count."""


@cache
def _questions() -> dict[str, str]:
    """Checklist category id -> its yes/no question."""
    return {c.id: c.question for c in Checklist.load(CHECKLIST).categories}


@labeling_hook("cuad_passages")
def cuad_passages(path: Path) -> Iterator[dict]:
    """``{"id", "text", "group"}`` a passage of every CUAD contract but the benchmark
    hold-out, in the analyzer's segmentation; group: the contract, so no contract ends up
    on both sides of the fine-tuning split."""
    for c in contracts(path):
        if not is_holdout(c["slug"]):
            for g in segments(c["text"]):
                yield {"id": f"{c['slug']}#{g.start}", "text": g.text, "group": c["slug"]}


def annotated_passages(path: Path) -> Iterator[dict]:
    """``cuad_passages`` with CUAD's own answer as ``label``: the labeling category whose
    annotated clauses cover the passage most, ``none`` where none covers it. A sample of
    these is a gold file (``assistants label legal --gold``); all of them measure the
    labeling functions against CUAD's annotations."""
    names = {c.id: c.name for c in Checklist.load(CHECKLIST).categories if c.id in spec_labels(SPEC)}
    for c in contracts(path):
        if is_holdout(c["slug"]):
            continue
        spans = {cid: [s for s in (locate(c["text"], cl) for cl in clauses(c, name)) if s] for cid, name in names.items()}
        for g in segments(c["text"]):
            cover = {cid: max((_covers(g.start, g.end, s, e) for s, e in found), default=0.0)
                     for cid, found in spans.items()}
            best = max(cover, key=cover.get, default=None)
            label = best if best and cover[best] >= MIN_COVER else "none"
            yield {"id": f"{c['slug']}#{g.start}", "text": g.text, "group": c["slug"], "label": label}


def _covers(start: int, end: int, s: int, e: int) -> float:
    """How much of the shorter of a passage and a clause the other covers: a passage inside
    a long clause and a short clause inside a passage both count fully."""
    return max(0, min(end, e) - max(start, s)) / max(1, min(end - start, e - s))


@labeling_hook("judge_examples")
def examples(text: str, label: str, record: Mapping[str, Any]) -> Iterator[dict]:
    """"Yes" to the labeled category's question (none for ``none``) and "No" to one other
    category's, chosen by a hash of the text so reruns agree."""
    questions = _questions()
    group = str(record.get("group") or text_hash(text))
    if label in questions:
        yield {"question": judge_prompt(text, questions[label]), "answer": "Yes", "group": group}
    others = sorted(c for c in questions if c != label)
    other = others[int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % len(others)]
    yield {"question": judge_prompt(text, questions[other]), "answer": "No", "group": group}

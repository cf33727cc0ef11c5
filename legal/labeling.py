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
from shared.labeling.pipeline import text_hash

from .cuad import contracts, is_holdout
from .training import CHECKLIST


@cache
def _questions() -> dict[str, str]:
    """Checklist category id -> its yes/no question."""
    return {c.id: c.question for c in Checklist.load(CHECKLIST).categories}


def cuad_passages(path: Path) -> Iterator[dict]:
    """``{"id", "text", "group"}`` a passage of every CUAD contract but the benchmark
    hold-out, in the analyzer's segmentation; group: the contract, so no contract ends up
    on both sides of the fine-tuning split."""
    for c in contracts(path):
        if not is_holdout(c["slug"]):
            for g in segments(c["text"]):
                yield {"id": f"{c['slug']}#{g.start}", "text": g.text, "group": c["slug"]}


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

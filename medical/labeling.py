"""Hook of ``medical/labeling.yaml`` for ``assistants label medical``: a labeled question
becomes a question-type example (which kind of answer the question asks for)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shared.labeling.pipeline import text_hash


@cache
def _labels() -> tuple[str, ...]:
    # The spec's own label list, so the prompt always offers exactly the labels it trains.
    spec = yaml.safe_load(Path(__file__).with_name("labeling.yaml").read_text(encoding="utf-8"))
    return tuple(spec["labels"])


def examples(text: str, label: str, record: Mapping[str, Any]) -> Iterator[dict]:
    """One example: the question and the type list in, the type out; group: the
    question's focus (MedQuAD's disease or topic) where the pool has one."""
    question = (f"Which kind of medical question is this? Answer with one of: {', '.join(_labels())}.\n\n"
                f"Question: {text.strip()}")
    yield {"question": question, "answer": label, "group": str(record.get("focus") or text_hash(text))}

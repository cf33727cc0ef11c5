"""Hook of ``medical/labeling.yaml`` for ``assistants label medical``: a labeled question
becomes a question-type example (which kind of answer the question asks for)."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shared.labeling.pipeline import spec_labels, text_hash
from shared.plugins import labeling_hook

SPEC = Path(__file__).with_name("labeling.yaml")


@labeling_hook("question_type_examples")
def examples(text: str, label: str, record: Mapping[str, Any]) -> Iterator[dict]:
    """One example: the question and the type list in, the type out; group: the
    question's focus (MedQuAD's disease or topic) where the pool has one."""
    question = (f"Which kind of medical question is this? Answer with one of: {', '.join(spec_labels(SPEC))}.\n\n"
                f"Question: {text.strip()}")
    yield {"question": question, "answer": label, "group": str(record.get("focus") or text_hash(text))}

"""The yes/no judgement the model makes about one candidate span. Training examples and
the analyzer both build the user message here, so the adapter is trained on exactly the
prompt it is asked at run time."""
from __future__ import annotations

ANSWERS = ("Yes", "No")


def judge_prompt(span: str, question: str) -> str:
    return f"Clause: {span.strip()}\n\nQuestion: {question.strip()}\nAnswer Yes or No."

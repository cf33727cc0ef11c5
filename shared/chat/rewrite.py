"""History-aware retrieval queries: a follow-up such as "and for couples?" is searched
together with what it follows up on."""
from __future__ import annotations

import re
from typing import Sequence

from ..generation import GenerationError, Generator

_REFERRING = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|his|her|there|same|above|previous|"
    r"earlier|also|too|instead|else|more|again)\b|^(and|but|or|so|what about|how about)\b", re.IGNORECASE)
CONDENSE = (
    "Rewrite the last user question as one standalone search query, using the conversation for context. "
    "Reply with the query only."
)


def _last_question(history: Sequence[dict]) -> str | None:
    return next((m["content"] for m in reversed(history) if m["role"] == "user"), None)


def heuristic(question: str, history: Sequence[dict]) -> str:
    """Short or referring follow-ups are searched with the previous question prepended."""
    prev = _last_question(history)
    if prev and (len(question.split()) <= 6 or _REFERRING.search(question)):
        return f"{prev} {question}"
    return question


def with_llm(gen: Generator, question: str, history: Sequence[dict]) -> str:
    """The model condenses; anything unusable (empty, rambling, failed) falls back to the heuristic."""
    if not history:
        return question
    convo = "\n".join(f"{m['role']}: {m['content'][:500]}" for m in history[-4:])
    try:
        out = gen.generate([{"role": "system", "content": CONDENSE},
                            {"role": "user", "content": f"{convo}\nuser: {question}"}], max_tokens=48, stop=["\n"])
    except GenerationError:
        out = ""
    out = out.strip().strip('"')
    return out if 3 <= len(out) <= 3 * len(question) + 200 else heuristic(question, history)


def rewrite(mode: str, gen: Generator, question: str, history: Sequence[dict]) -> str:
    if mode == "off" or not history:
        return question
    return with_llm(gen, question, history) if mode == "llm" else heuristic(question, history)

"""``[n]`` markers in an answer -> the numbered passages of its prompt."""
from __future__ import annotations

import re
from typing import Sequence

from ..numbers import numbers
from .guard import MARKER, neutralize
from ..types import Citation, Passage

# [1], [1, 3], [1][2], [1-2] all count; numbers outside the prompt are reported, not linked.
_MARK = re.compile(r"\[(\d+(?:\s*[,;-]\s*\d+)*)\]")


def cited_numbers(answer: str) -> list[int]:
    found: list[int] = []
    for group in _MARK.findall(answer):
        parts = [int(x) for x in re.split(r"\s*[,;-]\s*", group)]
        if "-" in group and len(parts) == 2 and parts[0] <= parts[1] <= parts[0] + 20:
            parts = list(range(parts[0], parts[1] + 1))
        found.extend(p for p in parts if p not in found)
    return found


def resolve(answer: str, passages: Sequence[Passage]) -> tuple[list[Citation], list[int]]:
    """(citations in order of first mention, numbers that match no passage)."""
    by_n = {p.n: p for p in passages if p.n is not None}
    citations, invalid = [], []
    for n in cited_numbers(answer):
        p = by_n.get(n)
        if p is None:
            invalid.append(n)
            continue
        p.cited = True
        span = (p.char_start, p.char_end) if p.char_start is not None else None
        citations.append(Citation(n, p.title, p.doc_id, span, p.as_of, p.text[:240], p.node_id))
    return citations, invalid


_WORD = re.compile(r"[a-z0-9$%.,]+")
_STOP = frozenset("a an the of to in on for and or is are was were be by with as at it this that from can "
                  "your you i we they he she its their which what how".split())
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _stem(word: str) -> str:
    """Plurals match their singular ("limits" ~ "limit", "IRAs" ~ "IRA")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _content_words(text: str) -> set[str]:
    return {_stem(w.strip(".,")) for w in _WORD.findall(text.lower())} - _STOP - {""}


def attribute(answer: str, passages: Sequence[Passage], min_overlap: float = 0.5) -> tuple[str, int]:
    """Small models often answer from the sources without writing ``[n]``. Each
    uncited sentence gets the marker of the prompt passage that shares most of its
    content words (at least ``min_overlap`` of them), so provenance is never silently
    lost; sentences supported by no passage stay unmarked. Returns (answer, markers added)."""
    candidates = [(p.n, _content_words(p.text)) for p in passages if p.n is not None]
    if not candidates:
        return answer, 0
    out, added = [], 0
    for sentence in _SENTENCE.split(answer):
        words = _content_words(sentence)
        if words and not _MARK.search(sentence):
            n, shared = max(((n, len(words & pw)) for n, pw in candidates), key=lambda t: t[1])
            if shared / len(words) >= min_overlap:
                stripped = sentence.rstrip()
                end = len(stripped) - 1 if stripped[-1:] in ".!?" else len(stripped)
                sentence = f"{stripped[:end]} [{n}]{stripped[end:]}"
                added += 1
        out.append(sentence)
    return " ".join(out), added


def substantive(answer: str) -> bool:
    """False for a non-answer ("The answer to this question is:"), which small models give
    when they lose the thread."""
    words = _content_words(_MARK.sub("", answer))
    return len(words) >= 4 and not answer.rstrip().endswith(":")


def extractive(question: str, passages: Sequence[Passage]) -> str | None:
    """The prompt sentence sharing most content words with the question, quoted with its
    marker: what the sources say when the model said nothing."""
    want = _content_words(question)
    best: tuple[int, int, str] | None = None
    for p in passages:
        if p.n is None:
            continue
        # What the model saw: instruction-like sentences in a document are never quoted.
        for sentence in _SENTENCE.split(neutralize(p.text)[0]):
            if MARKER in sentence:
                continue
            score = len(want & _content_words(sentence))
            if score and (best is None or score > best[0]):
                best = (score, p.n, " ".join(sentence.split()))
    return None if best is None else f'The closest source says: "{best[2]}" [{best[1]}]'


def unsupported_numbers(answer: str, passages: Sequence[Passage], question: str) -> set[str]:
    """Figures the answer states that neither its prompt passages nor the question contain."""
    seen = numbers(question).union(*(numbers(p.text) for p in passages if p.n is not None))
    return numbers(answer) - seen

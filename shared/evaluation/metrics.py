"""Scores computed locally, without an external LLM service.

- retrieval: hit@k (a gold passage among the first k) and reciprocal rank;
- a free-text answer: exact match and token F1 after normalising case, punctuation and
  articles (a benchmark format may register its own scorer: finance's TAT-QA does);
- faithfulness: the share of answer sentences supported by a passage they cite (most of
  the sentence's content words, every number included, occur in that passage);
- answer relevancy: cosine similarity of the question's and the answer's embeddings."""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Sequence

from ..chat.citations import _MARK, _SENTENCE, _content_words, cited_numbers
from ..text import words_only

def retrieval(ranked_ids: Sequence[str], gold: Sequence[str], k: int) -> dict[str, float]:
    rank = next((i for i, d in enumerate(ranked_ids, start=1) if d in set(gold)), None)
    return {f"hit@{k}": float(rank is not None and rank <= k), "mrr": 1.0 / rank if rank else 0.0}


_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def named_conditions(answer: str, k: int = 3) -> list[str]:
    """The first ``k`` names of a listed answer: one per line (or comma), without numbering,
    emphasis or what follows a colon, dash or bracket."""
    lines = [x for x in answer.replace("**", "").split("\n") if x.strip()]
    if len(lines) < 2:
        lines = answer.split(",")
    names = [re.split(r"[:(\u2013\u2014]| - ", _LIST_MARK.sub("", x), maxsplit=1)[0].strip(" .") for x in lines]
    return [n for n in names if n][:k]


# Words that name no condition by themselves ("disease" is in "coeliac disease").
_GENERIC = frozenset("a an the of and or disease diseases disorder syndrome condition type infection acute chronic".split())


def same_condition(gold: str, named: str) -> bool:
    """Names match when one's words all occur in the other's ("Influenza" ~ "Influenza (flu)")."""
    g, n = set(words_only(gold).split()), set(words_only(named).split())
    return bool(g and n - _GENERIC) and (g <= n or n <= g)


def top_k_named(answer: str, gold: str, k: int = 3) -> float:
    return float(any(same_condition(gold, n) for n in named_conditions(answer, k)))


def uncited(text: str) -> str:
    """The text without its citation marks ("[1]")."""
    return _MARK.sub("", text)


def normal_tokens(text: str) -> list[str]:
    """Lower-case words without punctuation or articles."""
    words = (tok.strip(string.punctuation) for tok in text.lower().split())
    return [w for w in words if w and w not in ("a", "an", "the")]


def token_f1(pred: list[str], gold: list[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if not common:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)


def exact_and_f1(answer: str, gold: object) -> dict[str, float]:
    """The default score of a free-text answer: exact match and token F1 of the normalised
    answer against the gold one (the best of several, when the gold answer is a list). A
    format that scores answers its own way registers its scorer with the format."""
    pred = normal_tokens(uncited(answer))
    golds = [normal_tokens(str(g)) for g in (gold if isinstance(gold, list) else [gold])]
    return {"em": max((float(pred == g) for g in golds), default=0.0),
            "f1": max((token_f1(pred, g) for g in golds), default=0.0)}


def faithfulness(answer: str, passages: Sequence[dict], min_share: float = 0.6) -> float | None:
    """Share of answer sentences supported by a passage they cite; None with no sentences."""
    by_n = {p["n"]: p["text"] for p in passages if p.get("n") is not None}
    sentences = [s for s in _SENTENCE.split(answer) if _content_words(uncited(s))]
    if not sentences:
        return None
    supported = 0
    for s in sentences:
        words = _content_words(uncited(s))
        numbers = {w for w in words if any(ch.isdigit() for ch in w)}
        for n in cited_numbers(s):
            text = by_n.get(n)
            if text is None:
                continue
            have = _content_words(text)
            if numbers <= have and len(words & have) >= min_share * len(words):
                supported += 1
                break
    return supported / len(sentences)


def relevancy(embedding, question: str, answer: str) -> float | None:
    if not answer.strip():
        return None
    import numpy as np

    q, a = embedding.embed([question, uncited(answer)])
    return float(np.dot(q, a) / (np.linalg.norm(q) * np.linalg.norm(a)))

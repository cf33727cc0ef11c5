"""Scores computed locally, without an external LLM service.

- retrieval: hit@k (a gold passage among the first k) and reciprocal rank;
- TAT-QA: exact match and token F1 after normalising numbers, with the scale (thousand,
  million, billion, percent) part of the answer, as in TAT-QA's own evaluation;
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

SCALES = ("thousand", "million", "billion", "percent")
_NUMBER = re.compile(r"-?\(?\$?\d[\d,]*(?:\.\d+)?\)?")


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


def _number(token: str) -> float | None:
    t = token.strip().replace("$", "").replace(",", "")
    negative = t.startswith("(") and t.endswith(")") or t.startswith("-")
    t = t.strip("()-")
    try:
        value = float(t)
    except ValueError:
        return None
    return -value if negative else value


def _normal_tokens(text: str) -> list[str]:
    """Lower-case words without punctuation or articles; numbers as rounded floats."""
    out = []
    for tok in text.lower().replace("%", " % ").split():
        n = _number(tok.strip(string.punctuation.replace("(", "").replace(")", "").replace("-", "").replace("$", "")))
        if n is not None:
            out.append(f"{round(n, 2):g}")
            continue
        tok = tok.strip(string.punctuation)
        if tok and tok not in ("a", "an", "the"):
            out.append(tok)
    return out


def predicted_scale(answer: str) -> str:
    low = answer.lower()
    if "%" in low or "percent" in low:
        return "percent"
    return next((s for s in SCALES[:3] if s in low), "")


def _f1(pred: list[str], gold: list[str]) -> float:
    common = sum((Counter(pred) & Counter(gold)).values())
    if not common:
        return 0.0
    p, r = common / len(pred), common / len(gold)
    return 2 * p * r / (p + r)


def tatqa(answer: str, gold: object, scale: str) -> dict[str, float]:
    """EM and F1 of a free-text answer against a TAT-QA gold answer (a list of spans, a
    number or a string). A number answer is read as the first number in the reply; the
    scale must match for either score to count, as in TAT-QA's evaluation."""
    answer = _MARK.sub("", answer)
    golds = [str(g) for g in gold] if isinstance(gold, list) else [str(gold)]
    if predicted_scale(answer) != (scale or ""):
        return {"em": 0.0, "f1": 0.0}
    if not isinstance(gold, list):  # arithmetic/count: one number
        want, found = _number(golds[0]), [_number(m) for m in _NUMBER.findall(answer)]
        got = next((f for f in found if f is not None), None)
        hit = float(want is not None and got is not None and round(abs(got), 2) == round(abs(want), 2))
        return {"em": hit, "f1": hit}
    gold_tokens, pred_tokens = _normal_tokens(" ".join(golds)), _normal_tokens(answer)
    em = float(all(" ".join(_normal_tokens(g)) in " ".join(pred_tokens) for g in golds) and
               len(pred_tokens) <= 2 * len(gold_tokens) + 2)
    return {"em": em, "f1": _f1(pred_tokens, gold_tokens)}


def faithfulness(answer: str, passages: Sequence[dict], min_share: float = 0.6) -> float | None:
    """Share of answer sentences supported by a passage they cite; None with no sentences."""
    by_n = {p["n"]: p["text"] for p in passages if p.get("n") is not None}
    sentences = [s for s in _SENTENCE.split(answer) if _content_words(_MARK.sub("", s))]
    if not sentences:
        return None
    supported = 0
    for s in sentences:
        words = _content_words(_MARK.sub("", s))
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

    q, a = embedding.embed([question, _MARK.sub("", answer)])
    return float(np.dot(q, a) / (np.linalg.norm(q) * np.linalg.norm(a)))

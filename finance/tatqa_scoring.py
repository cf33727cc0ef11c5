"""TAT-QA's answer scoring: exact match and token F1 after normalising numbers, with the
scale (thousand, million, billion, percent) part of the answer, as in TAT-QA's own
evaluation. Finance's ``tatqa`` benchmark format scores its free-text answers with it."""
from __future__ import annotations

import re
import string

from shared.evaluation.metrics import token_f1, uncited

SCALES = ("thousand", "million", "billion", "percent")
_NUMBER = re.compile(r"-?\(?\$?\d[\d,]*(?:\.\d+)?\)?")


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


def tatqa(answer: str, gold: object, scale: str) -> dict[str, float]:
    """EM and F1 of a free-text answer against a TAT-QA gold answer (a list of spans, a
    number or a string). A number answer is read as the first number in the reply; the
    scale must match for either score to count, as in TAT-QA's evaluation."""
    answer = uncited(answer)
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
    return {"em": em, "f1": token_f1(pred_tokens, gold_tokens)}


def score_answer(answer: str, item) -> dict[str, float]:
    """The ``tatqa`` format's scorer: an item's gold answer and scale."""
    return tatqa(answer, item.answer, item.scale)

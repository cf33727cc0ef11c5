"""Whose figures a model's sentence says they are. A tool's result names its subject (a
person, an account, a period) in code-written text; the model's phrasing may name only
what that text names. The small model echoes names from the question or invents them,
and "the value of Bob's portfolio is ..." over the asker's own figures is as damaging as
a leak."""
from __future__ import annotations

import re

from .base import ToolResult

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|\(\s*|\*+\s*|\[\d+\]\s*)$")
_OWNER = re.compile(r"\b([A-Za-z][A-Za-z0-9-]*)['\u2019]s\b")
# Possessive-looking words that are contractions or times, not owners ("it's", "today's").
_NO_OWNER = {"it", "that", "what", "there", "here", "let", "who", "where", "how", "he", "she", "today", "yesterday",
             "tomorrow", "year", "month", "week", "quarter", "day", "portfolio", "account", "fund", "market"}
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_YEAR = re.compile(r"(?<![\d$,.])(?:19|20)\d{2}(?![\d,]|\.\d)")
_RELATIVE_PERIOD = re.compile(r"\b(?:(?:last|past|previous|this|next)\s+(?:\d+\s+)?(?:day|week|month|quarter|year)s?|"
                              r"year[- ]to[- ]date|ytd)\b", re.I)
_SECOND_PERSON = re.compile(r"\b(?:you|your|yours)\b", re.I)
_FIRST_PERSON = re.compile(r"\b(?:my|mine|our|ours)\b", re.I)


def _vocabulary(result: ToolResult) -> str:
    """Everything the result itself says, in lower case."""
    as_of = result.as_of.isoformat() if result.as_of else ""
    return " ".join([result.title, result.passage().text, as_of]).lower()


def misattributions(text: str, result: ToolResult, principal: str) -> list[str]:
    """What ``text`` names that the result is not about: people or accounts (capitalised
    words inside a sentence, owners before "'s", ids), years and relative periods, "you"
    when the figures are not the asker's, and "my" (the model has no portfolio)."""
    said = _vocabulary(result)
    known = set(_WORD.findall(said))
    found = []
    for m in _WORD.finditer(text):
        w = m.group(0)
        entity = (w[:1].isupper() and len(w) > 1 and not _SENTENCE_START.search(text[:m.start()])) or \
            bool(re.search(r"\d", w) and re.search(r"[A-Za-z]", w) or "-" in w and w.isupper())
        if entity and w.lower() not in known:
            found.append(w)
    found += [m.group(1) + "'s" for m in _OWNER.finditer(text)
              if m.group(1).lower() not in known and m.group(1).lower() not in _NO_OWNER]
    # A period is named by its year or its dates; a year inside a date names no period
    # ("2024-12-31 to 2025-12-31" is 2025, not 2024).
    found += [d for d in _DATE.findall(text) if d not in said]
    found += [y for y in _YEAR.findall(_DATE.sub(" ", text)) if y not in _YEAR.findall(_DATE.sub(" ", said))]
    found += [p for p in _RELATIVE_PERIOD.findall(text) if p.lower() not in said]
    if result.owner != principal:
        found += _SECOND_PERSON.findall(text)
    found += _FIRST_PERSON.findall(text)
    return list(dict.fromkeys(found))

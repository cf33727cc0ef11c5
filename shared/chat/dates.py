"""The date a question asks about ("in 2025", "on 1 March 2026", "as of 2026-06-30"), so
retrieval can keep what was in force then. A period means its last day."""
from __future__ import annotations

import calendar
import re
from datetime import date

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_PATTERNS = [  # most specific first
    ("ymd", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")),
    ("mdy", re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I)),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH}\s+(\d{{4}})\b", re.I)),
    ("my", re.compile(rf"\b{_MONTH}\s+(\d{{4}})\b", re.I)),
    ("y", re.compile(r"\b(?:in|for|during|of|as of|tax year|year)\s+((?:19|20)\d{2})\b", re.I)),
]


def _make(kind: str, g: tuple[str, ...]) -> date:
    if kind == "ymd":
        return date(int(g[0]), int(g[1]), int(g[2]))
    if kind == "mdy":
        return date(int(g[2]), _MONTHS[g[0].lower()], int(g[1]))
    if kind == "dmy":
        return date(int(g[2]), _MONTHS[g[1].lower()], int(g[0]))
    if kind == "my":
        year, month = int(g[1]), _MONTHS[g[0].lower()]
        return date(year, month, calendar.monthrange(year, month)[1])
    return date(int(g[0]), 12, 31)


def mentioned_date(question: str) -> date | None:
    """The first date the question names, or None (an impossible date counts as none)."""
    for kind, pattern in _PATTERNS:
        m = pattern.search(question)
        if m:
            try:
                return _make(kind, m.groups())
            except ValueError:
                return None
    return None


def retrieval_date(question: str, policy: str, today: date) -> date | None:
    """The ``as_of`` retrieval uses under ``retrieval.dates``."""
    if policy == "any":
        return None
    found = mentioned_date(question)
    return found or (today if policy == "question_or_today" else None)

"""Personal data that has a recognisable shape (e-mail addresses, phone, social security,
card and medical record numbers): scrubbed from training data and from logs."""
from __future__ import annotations

import re
from collections import Counter

PII_PATTERNS = {
    "email": (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "[EMAIL]"),
    "ssn": (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), "[ID]"),
    "card": (re.compile(r"\b(?:\d[ -]?){13,16}\b"), "[CARD]"),
    "phone": (re.compile(r"(?<!\w)(?:\+?\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}(?!\w)"), "[PHONE]"),
    "mrn": (re.compile(r"\b(?:MRN|patient id|medical record number)[:#\s]*\d{5,}\b", re.IGNORECASE), "[ID]"),
}


def scrub(text: str, counts: dict[str, int] | None = None) -> str:
    """``text`` with each match replaced by its placeholder; ``counts`` tallies them by kind."""
    counts = Counter() if counts is None else counts
    for kind, (pattern, placeholder) in PII_PATTERNS.items():
        text, n = pattern.subn(placeholder, text)
        if n:
            counts[kind] += n
    return text

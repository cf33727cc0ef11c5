"""The numbers a text states, as values: "1,234.50" and "1234.5" are the same figure.
Used to hold an answer to the figures its sources (or tools) gave."""
from __future__ import annotations

import re

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_MARKER = re.compile(r"\[\d+(?:\s*[,;-]\s*\d+)*\]")  # citation markers are not figures


def numbers(text: str) -> set[str]:
    out = set()
    for raw in _NUMBER.findall(_MARKER.sub(" ", text)):
        plain = raw.replace(",", "").rstrip(".")
        out.add(plain.rstrip("0").rstrip(".") if "." in plain else plain)
    return out

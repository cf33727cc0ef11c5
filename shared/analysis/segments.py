"""A document cut into clause-sized segments with exact character offsets, the page they
start on and the section heading they sit under (the "location" a report quotes)."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# Sentence ends and blank lines; a clause never spans two paragraphs.
_BREAK = re.compile(r"(?<=[.;:!?])\s+(?=[\"“(A-Z0-9])|\n\s*\n")
# "12. Governing Law", "Section 4.2 Term", "ARTICLE IX - INSURANCE", "## 3. Fees"
_HEADING = re.compile(r"^\s*#*\s*((?:section|article)\s+[\divxlc.]+|\d+(?:\.\d+)*\.?)\s*[-–:.]?\s*([A-Z][^\n.]{2,60})?",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Segment:
    text: str
    start: int
    end: int
    page: int | None = None
    section: str | None = None

    def location(self) -> str:
        parts = [f"section {self.section}"] if self.section else []
        if self.page:
            parts.append(f"page {self.page}")
        parts.append(f"characters {self.start}–{self.end}")
        return ", ".join(parts)


def _pieces(text: str, max_chars: int) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for m in list(_BREAK.finditer(text)) + [None]:
        end = m.start() if m else len(text)
        if text[cursor:end].strip():
            spans.append((cursor, end))
        cursor = m.end() if m else len(text)
    out: list[tuple[int, int]] = []
    for s, e in spans:
        # Over-long run-on clauses are cut at the last comma/space before the limit.
        while e - s > max_chars:
            cut = max(text.rfind(", ", s, s + max_chars), text.rfind(" ", s, s + max_chars))
            cut = cut + 1 if cut > s else s + max_chars
            out.append((s, cut))
            s = cut
        out.append((s, e))
    return out


def _strip(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def split(text: str, pages: list[tuple[int, int]] | None = None, max_chars: int = 600, min_chars: int = 40) -> list[Segment]:
    """Segments in document order. Fragments shorter than ``min_chars`` (a heading, "(a)")
    join the segment after them so that no quoted span is a bare number."""
    starts = [p for _, p in pages or []]
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for s, e in _pieces(text, max_chars):
        s, e = _strip(text, s, e)
        if carry is not None:
            s, carry = carry, None
        if e - s < min_chars:
            carry = s
            continue
        merged.append((s, e))
    if carry is not None and merged:
        merged[-1] = (merged[-1][0], len(text.rstrip()))
    section: str | None = None
    out = []
    for s, e in merged:
        for line in text[s:e].splitlines()[:2]:
            m = _HEADING.match(line)
            if m and (m.group(2) or len(line.strip()) < 12):
                section = " ".join(x.strip() for x in m.groups() if x).strip()
                break
        page = pages[bisect.bisect_right(starts, s) - 1][0] if pages and bisect.bisect_right(starts, s) else None
        out.append(Segment(text[s:e], s, e, page, section))
    return out

"""A Markdown report -> PDF with fpdf2's core fonts, so no font file has to ship.

Only the subset the reports use is rendered: headings (#, ##, ###), paragraphs, ``> ``
quotes, ``- `` bullets and **bold**. Core fonts cover Latin-1 only, so anything else is
transliterated (curly quotes, dashes, ellipsis) instead of failing the export."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

MARGIN = 20  # mm
# kind -> (font style, size in pt, left indent in mm)
LAYOUT = {"#": ("B", 16, 0), "##": ("B", 13, 0), "###": ("B", 11, 0), "p": ("", 10, 0), ">": ("I", 10, 6), "-": ("", 10, 4)}
_SUBSTITUTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "--", "\u2212": "-",
    "\u2026": "...", "\u2022": "-", "\u00a0": " ", "\u2009": " ", "\u200b": "",
})
_LINE = re.compile(r"^(?:(?P<h>#{1,6})\s+|(?P<q>>)\s?|(?P<b>[-*])\s+)?(?P<text>.*)$")


def to_latin1(text: str) -> str:
    """Typographic characters to ASCII look-alikes, accents kept where Latin-1 has them,
    other letters reduced to their base form (or '?')."""
    out = []
    for ch in text.translate(_SUBSTITUTES):
        if ord(ch) < 256:
            out.append(ch)
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if ord(c) < 256)
            out.append(base or "?")
    return "".join(out)


def _blocks(markdown: str) -> Iterator[tuple[str, str]]:
    """(kind, text) per block; consecutive lines of one paragraph or quote are joined."""
    kind, lines = None, []
    for raw in markdown.splitlines():
        m = _LINE.match(raw.strip())
        line_kind = ("#" * min(len(m["h"]), 3)) if m["h"] else ">" if m["q"] else "-" if m["b"] else "p"
        text = m["text"].strip()
        if kind and (not text or line_kind != kind or kind not in ("p", ">")):
            yield kind, " ".join(lines)
            kind, lines = None, []
        if text:
            kind = kind or line_kind
            lines.append(text)
    if kind:
        yield kind, " ".join(lines)


def _write_spans(pdf, text: str, style: str, size: int) -> None:
    """Write with **bold** spans; an unpaired ``**`` is kept as written."""
    parts = text.split("**")
    if len(parts) % 2 == 0:
        parts[-2:] = ["**".join(parts[-2:])]
    for i, part in enumerate(parts):
        pdf.set_font("Helvetica", "".join(sorted(set(style + ("B" if i % 2 else "")))), size)
        pdf.write(size * 0.5, part)


def markdown_to_pdf(markdown: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(MARGIN, MARGIN)
    pdf.set_auto_page_break(True, MARGIN)
    pdf.add_page()
    for kind, text in _blocks(to_latin1(markdown)):
        style, size, indent = LAYOUT[kind]
        if kind.startswith("#"):
            pdf.ln(size * 0.3)
        pdf.set_left_margin(MARGIN + indent)  # wrapped lines keep the block's indent
        pdf.set_x(MARGIN + indent)
        _write_spans(pdf, f"- {text}" if kind == "-" else text, style, size)
        pdf.ln(size * 0.5 + 2)
    pdf.set_left_margin(MARGIN)
    return bytes(pdf.output())

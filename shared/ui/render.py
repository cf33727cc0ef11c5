"""HTML for the sources panel and the span page (escaped: passages are untrusted text)."""
from __future__ import annotations

from html import escape
from typing import Sequence

from ..types import Passage
from ..tools.base import TOOL_SOURCE


def _span(p: Passage) -> str:
    where = []
    if p.page:
        where.append(f"page {p.page}")
    if p.char_start is not None:
        where.append(f"chars {p.char_start}–{p.char_end}")
    return ", ".join(where) or "passage"


def _where(p: Passage, base: str) -> str:
    if p.node_id.startswith(TOOL_SOURCE):
        return "computed from the database"  # a tool's figures: no stored passage to link to
    return f'score {p.score:.3f} · <a href="{base}/sources/{escape(p.node_id)}" target="_blank">{_span(p)}</a>'


def sources_panel(passages: Sequence[Passage], base: str = "") -> str:
    if not passages:
        return '<div id="sources-empty">No sources were relevant enough to answer from.</div>'
    items = []
    for p in passages:
        sim = f" · similarity {p.similarity:.2f}" if p.similarity is not None else ""
        as_of = f" · as of {escape(p.as_of)}" if p.as_of else ""
        cited = " · <b>cited</b>" if p.cited else ""
        snippet = escape(p.text[:400] + ("…" if len(p.text) > 400 else ""))
        items.append(
            f'<div class="source" data-n="{p.n}" data-node="{escape(p.node_id)}">'
            f'<div><b>[{p.n}] {escape(p.title)}</b></div>'
            f'<div class="source-meta">{_where(p, base)}{sim}{as_of}{cited}</div>'
            f'<blockquote>{snippet}</blockquote></div>'
        )
    return '<div id="sources-list">' + "".join(items) + "</div>"


def span_page(title: str, doc_id: str, text: str, meta: dict) -> str:
    facts = [f"document <code>{escape(doc_id)}</code>"]
    if meta.get("valid_from"):
        facts.append(f"in force from {escape(str(meta['valid_from']))}")
    if meta.get("valid_to"):
        facts.append(f"until {escape(str(meta['valid_to']))}")
    if meta.get("page"):
        facts.append(f"page {escape(str(meta['page']))}")
    if meta.get("char_start") is not None:
        facts.append(f"characters {meta['char_start']}–{meta['char_end']}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
            f"<body style='font-family:sans-serif;max-width:50em;margin:2em auto'><h1>{escape(title)}</h1>"
            f"<p>{' · '.join(facts)}</p><pre style='white-space:pre-wrap'>{escape(text)}</pre></body></html>")

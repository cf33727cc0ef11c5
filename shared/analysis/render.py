"""A clause report as Markdown: the view in the UI and the downloadable file (the PDF is
made from the same text, so both always say the same)."""
from __future__ import annotations

from .analyzer import Finding, Report

MODES = {"hybrid": "adapter + retrieval", "rag": "base model + retrieval", "finetune": "adapter, no retrieval",
         "base": "base model, no retrieval"}


def _quote(text: str, limit: int = 700) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " …"
    return "> “" + text + "”"


def _finding(f: Finding) -> list[str]:
    head = f"## {f.category.name}: {'found' if f.found else 'not found'}"
    lines = [head, "", f"**Plain reading:** {f.reading}", ""]
    for span in f.spans:
        lines += [_quote(span.text), "", f"*Location: {span.location()}*", ""]
    lines.append(f"<sub>confidence {f.score:.2f}</sub>")
    return lines + [""]


def report_markdown(report: Report) -> str:
    g = report.generator
    found = len(report.found)
    lines = [
        f"# Clause report: {report.title}", "",
        f"Document `{report.doc_id}` · {report.created} · {found} of {len(report.findings)} categories found", "",
        f"Analysed with `{g.get('model')}` (adapter: `{g.get('adapter') or 'none'}`), {MODES[report.mode]}.", "",
    ]
    if report.disclaimer:
        lines += [f"**{report.disclaimer}**", ""]
    lines += ["| Category | Found | Where |", "|---|---|---|"]
    for f in report.findings:
        where = f.spans[0].location() if f.spans else "–"
        lines.append(f"| {f.category.name} | {'yes' if f.found else 'no'} | {where} |")
    lines.append("")
    for f in report.findings:
        lines += _finding(f)
    return "\n".join(lines).rstrip() + "\n"

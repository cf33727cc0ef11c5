"""Importers for the openly licensed finance datasets (see ../shared/data/README.md):
TAT-QA annual-report contexts and the Rho-Bank knowledge base. Each takes a path."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from shared.ingest.importers import read_records
from shared.plugins import importer


def render_table(table: list[list[str]]) -> list[str]:
    """One line per data row, each cell named by its column header, so a row is one
    sentence that the chunker never splits: "Fixed Price: 2019 = $1,452.4; 2018 = ...".
    Leading rows with an empty first cell are headers; a row with only a label is a
    section heading that prefixes the rows under it."""
    rows = [[str(c).strip() for c in row] for row in table if any(str(c).strip() for c in row)]
    headers: list[list[str]] = []
    while rows and not rows[0][0]:
        headers.append(rows.pop(0))
    # A header row with a single filled cell spans the table ("Years Ended September 30,"):
    # it is a caption, not the name of the one column it happens to sit above.
    captions = [next(c for c in h if c) for h in headers if sum(bool(c) for c in h) == 1]
    headers = [h for h in headers if sum(bool(c) for c in h) > 1]
    width = max((len(r) for r in rows + headers), default=0)
    names = [" ".join(h[j] for h in headers if j < len(h) and h[j]).strip() or f"column {j}" for j in range(width)]
    lines, section = [f"({' '.join(captions).rstrip(',')})"] if captions else [], ""
    for row in rows:
        label, cells = row[0], row[1:]
        if label and not any(cells):
            section = label.rstrip(":")
            continue
        values = "; ".join(f"{names[j + 1]} = {v}" for j, v in enumerate(cells) if v)
        name = f"{section}, {label}" if section and label else (label or section or "row")
        lines.append(f"{name}: {values}.")
    return lines


@importer("tatqa")
def tatqa(path: Path) -> Iterator[dict]:
    """TAT-QA contexts (``tatqa_contexts.jsonl``): the table, then the report paragraphs."""
    for rec in read_records(path):
        paragraphs = [p.strip() for p in rec.get("paragraphs", []) if p and p.strip()]
        title_hint = paragraphs[0].split(":")[0][:80] if paragraphs else "table"
        yield {
            "id": rec["id"],
            "title": f"Annual report excerpt: {title_hint}",
            "text": "Table:\n" + "\n".join(render_table(rec.get("table") or [])) + "\n\n" + "\n\n".join(paragraphs),
            "dataset": "TAT-QA",
            "split": rec.get("source_split", ""),
        }


@importer("bank_kb")
def bank_kb(path: Path) -> Iterator[dict]:
    """Rho-Bank knowledge base (``rho_bank_docs.jsonl.gz``): one markdown document each."""
    for rec in read_records(path):
        yield {"id": rec["id"], "title": rec.get("title") or rec["id"], "text": rec.get("text", ""), "dataset": "Rho-Bank"}

"""Medical's benchmark formats (registered on import; config.yaml names this module under
``domain.plugins``).

- ``pubmedqa``: yes/no/maybe questions over research abstracts (the abstracts are the RAG
  corpus and the gold passages).
- ``conditions``: described symptoms -> the condition, scored top-3 over a ranked list
  (the cases and condition descriptions medical.conditions:benchmark_cases writes)."""
from __future__ import annotations

from pathlib import Path

from shared.evaluation.datasets import Dataset, Item, Passage, need, rows
from shared.plugins import benchmark_format


@benchmark_format("pubmedqa")
def pubmedqa(path: Path, context: Path | None = None) -> Dataset:
    items, passages = [], []
    for r in rows(path):
        need(r, ("id", "question", "contexts", "final_decision"), path)
        q = f"{r['question']}\nAnswer yes, no or maybe."
        items.append(Item(r["id"], q, "choice", r["final_decision"], ["yes", "no", "maybe"], gold=[r["id"]],
                          query=r["question"]))
        passages.append(Passage(r["id"], f"PubMed {r.get('pmid', r['id'])}", "\n".join(r["contexts"])))
    return Dataset("pubmedqa", items, passages)


CONDITIONS_ASK = "List the three most likely conditions, one per line, most likely first."


@benchmark_format("conditions")
def conditions(path: Path, context: Path | None = None) -> Dataset:
    """Described symptoms -> the condition (top-3 of a ranked list). Rows of kind
    ``condition`` (id, title, text) are the corpus; rows of kind ``case`` (id, text: the
    description, condition, gold: condition ids) the items. Written by a domain's importer."""
    items, passages = [], []
    for r in rows(path):
        need(r, ("id", "kind", "text"), path)
        if r["kind"] == "condition":
            need(r, ("title",), path)
            passages.append(Passage(r["id"], r["title"], r["text"]))
        else:
            need(r, ("condition", "gold"), path)
            items.append(Item(r["id"], f"{r['text']}\n{CONDITIONS_ASK}", "condition", r["condition"],
                              gold=list(r["gold"]), query=r["text"]))
    return Dataset("conditions", items, passages)

"""How good the labeling functions and label models are: the numbers a rule author
iterates on and a data card reports.

Per function, with Snorkel's ``LFAnalysis`` conventions so the numbers compare: coverage is
the share of items it votes on; overlap, the share of items it votes on where another
function votes too; conflict, the share where another function votes a different label.
All three are shares of all items, so conflict <= overlap <= coverage. Given gold labels
for some items (``ABSTAIN`` = -1 for the rest), accuracy is the share of its votes that
are right among the gold items it voted on, with how many those were: an accuracy on
five items says little.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .functions import ABSTAIN
from .model import LabelModel, as_votes


def lf_summary(L: np.ndarray, labels_gold: np.ndarray | None = None,
               names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row a function (column of ``L``): name, coverage, overlap, conflict and, given
    gold labels, gold_count and accuracy (None where it voted on no gold item)."""
    L = as_votes(L)
    n, m = L.shape
    names = list(names) if names is not None else [f"lf{j}" for j in range(m)]
    if len(names) != m:
        raise ValueError(f"{len(names)} names for {m} functions")
    gold = _gold(labels_gold, n)
    voted = L != ABSTAIN
    voters = voted.sum(axis=1)
    rows = []
    for j in range(m):
        mine = voted[:, j]
        agreeing = (L == L[:, [j]]).sum(axis=1)  # counts the function itself
        row: dict[str, Any] = {"name": names[j], "coverage": _share(mine),
                               "overlap": _share(mine & (voters > 1)),
                               "conflict": _share(mine & (voters > agreeing))}
        if gold is not None:
            row.update(_accuracy(L[:, j], gold))
        rows.append(row)
    return rows


def label_model_report(L: np.ndarray, models: Mapping[str, LabelModel],
                       labels_gold: np.ndarray | None = None) -> list[dict[str, Any]]:
    """One row a fitted label model: name, coverage (the share of items it labels) and,
    given gold labels, gold_count and accuracy on the gold items it labels."""
    L = as_votes(L)
    gold = _gold(labels_gold, L.shape[0])
    rows = []
    for name, model in models.items():
        predicted = model.predict(L)
        row: dict[str, Any] = {"name": name, "coverage": _share(predicted != ABSTAIN)}
        if gold is not None:
            row.update(_accuracy(predicted, gold))
        rows.append(row)
    return rows


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of ``lf_summary`` or ``label_model_report`` rows for a data card:
    shares to three decimals, "–" where there is no number."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0


def _gold(labels_gold: np.ndarray | None, n: int) -> np.ndarray | None:
    if labels_gold is None:
        return None
    gold = np.asarray(labels_gold)
    if gold.shape != (n,) or (gold.size and not np.issubdtype(gold.dtype, np.integer)):
        raise ValueError(f"gold labels are {n} integers (ABSTAIN where unknown), got shape {gold.shape}")
    return gold


def _accuracy(predicted: np.ndarray, gold: np.ndarray) -> dict[str, Any]:
    scored = (predicted != ABSTAIN) & (gold != ABSTAIN)
    count = int(scored.sum())
    return {"gold_count": count,
            "accuracy": float((predicted[scored] == gold[scored]).mean()) if count else None}


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")  # a "|" in a name would end the cell

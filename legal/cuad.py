"""CUAD v1 read in place (``../shared/data/legal/cuad``): contracts with their clause
annotations, the benchmark hold-out, clause spans in the contract text and the
normalised metadata answers (dates, parties)."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Iterator

from shared.ingest.importers import DatasetError, read_records

HOLDOUT_SEED = "cuad-holdout"
HOLDOUT_FRACTION = 0.10


def clauses(contract: dict, category: str) -> list[str]:
    """The annotated clauses of one CUAD category in a contract."""
    return [c for c in contract["categories"].get(category, {}).get("clauses", []) if c.strip()]


def answer(contract: dict, category: str) -> str:
    """The category's answer ("Yes"/"No", or a normalised value such as "6/21/99")."""
    return " ".join(contract["categories"].get(category, {}).get("answer", "").split())


def is_holdout(slug: str) -> bool:
    """The benchmark's ~10% of contracts: never trained on, never in the public corpus.
    A seeded hash of the slug, so every machine and run agrees without a stored list."""
    h = int(hashlib.sha256(f"{HOLDOUT_SEED}:{slug}".encode()).hexdigest()[:8], 16)
    return h / float(1 << 32) < HOLDOUT_FRACTION


def cuad_dir(path: Path) -> Path:
    """The cuad folder, given it or its ``master_clauses.jsonl``."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not (folder / "master_clauses.jsonl").is_file():
        raise DatasetError(f"{path}: not the CUAD folder (no master_clauses.jsonl)")
    return folder


def contracts(path: Path) -> Iterator[dict]:
    """``{"slug", "text", "categories"}`` of every contract, in CUAD order (hold-out
    included; callers choose with ``is_holdout``). ``categories``: CUAD category name ->
    ``{"clauses": [str], "answer": str}``."""
    folder = cuad_dir(path)
    for rec in read_records(folder / "master_clauses.jsonl"):
        file = folder / "contracts" / f"{rec['contract']}.txt"
        if file.is_file():
            yield {"slug": rec["contract"], "text": file.read_text(encoding="utf-8"), "categories": rec.get("categories") or {}}


def holdout_contracts(path: Path) -> Iterator[dict]:
    return (c for c in contracts(path) if is_holdout(c["slug"]))


def locate(text: str, clause: str) -> tuple[int, int] | None:
    """(start, end) of an annotated clause in the contract text, tolerating whitespace
    differences (CUAD's CSV cells reflow line breaks, sometimes joining or splitting words)
    and a stretch of skipped text where it says ``<omitted>``."""
    parts = [r"\s*".join(map(re.escape, p.split())) for p in clause.split("<omitted>") if p.strip()]
    if not parts:
        return None
    m = re.search(r"[\s\S]{0,3000}?".join(parts), text)
    return (m.start(), m.end()) if m else None


_DATE_FORMATS = ("%m/%d/%y", "%m/%d/%Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%d %B %Y", "%Y-%m-%d")


def parse_date(value: str) -> str | None:
    """ISO date of a CUAD date answer ("6/21/99", "June 21, 1999"); None for anything
    else ("perpetual", "[]/[]/2016", "")."""
    value = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", " ".join(value.split()).replace(" ,", ","))
    for fmt in _DATE_FORMATS:
        try:  # %y reads 69-99 as 19xx and 00-68 as 20xx, right for CUAD's 1993-2020 filings
            return datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_parties(answer: str) -> list[str]:
    """Party names of the Parties answer ('I-ESCROW, INC. ("i-Escrow"); 2THEMART.COM, INC.
    ("2TheMart")'), without the defined short names and the boilerplate after them."""
    names = []
    for part in answer.split(";"):
        name = re.sub(r"\(.*?\)|\[.*?\]|[\"“”]", " ", part)
        name = " ".join(name.split()).strip(" ,")
        if name and len(name) <= 80 and not re.search(r"\b(?:each|referred|collectively|hereinafter)\b", name, re.I):
            names.append(name)
    # "A and B" entries repeat parties already named; so do the same names in other case.
    lower = [n.lower() for n in names]
    return [n for i, n in enumerate(names)
            if lower.index(lower[i]) == i and not any(o != lower[i] and o in lower[i] for o in lower)]


_SMALL = {"and", "or", "of", "the", "for", "to", "in", "on", "a", "an", "by", "with"}


def title_case(text: str) -> str:
    """All-caps CUAD names read as titles ("CO-BRANDING AND ADVERTISING AGREEMENT" ->
    "Co-Branding and Advertising Agreement"); mixed-case text is kept as written."""
    text = " ".join(text.split())
    if not text.isupper():
        return text
    words = [w.lower() if i and w.lower() in _SMALL else w if any(ch.isdigit() for ch in w) else w.title()
             for i, w in enumerate(text.split())]
    return re.sub(r"\b(Inc|Ltd|Llc|Co|Corp|Plc)\b", lambda m: {"Llc": "LLC", "Plc": "PLC"}.get(m[1], m[1]), " ".join(words))

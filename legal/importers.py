"""Importers for the openly licensed legal datasets (see ../shared/data/README.md): CUAD
contracts with their dates, parties and governing law as metadata (benchmark hold-out
excluded), and LegalBench case-law sentences. Each takes a path."""
from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

from shared.ingest.importers import read_records
from shared.plugins import importer

from .cuad import answer, contracts, is_holdout, parse_date, parse_parties, title_case

CASE_LAW_SENTENCES = 20
"""Sentences per case-law document: a few chunks each, so a hit's neighbours stay together."""


@importer("cuad")
def cuad(path: Path) -> Iterator[dict]:
    """One document per CUAD contract outside the benchmark hold-out (``path``: the cuad
    folder or its master_clauses.jsonl)."""
    for c in contracts(path):
        if is_holdout(c["slug"]):
            continue
        name = title_case(answer(c, "Document Name")) or c["slug"]
        parties = [title_case(p) for p in parse_parties(answer(c, "Parties"))]
        agreement_date = parse_date(answer(c, "Agreement Date"))
        valid_from = parse_date(answer(c, "Effective Date")) or agreement_date
        valid_to = parse_date(answer(c, "Expiration Date"))
        if valid_from and valid_to and valid_to < valid_from:
            valid_to = None  # an inconsistent annotation would hide the contract from every as-of query
        rec = {
            "id": c["slug"],
            "title": f"{name} between {' and '.join(parties[:3])}" if parties else name,
            "text": c["text"],
            "parties": parties,
            "agreement_type": name.lower(),
            "agreement_date": agreement_date,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "jurisdiction": answer(c, "Governing Law") or None,
            "dataset": "CUAD",
        }
        yield {k: v for k, v in rec.items() if v is not None}


@importer("case_law")
def case_law(path: Path) -> Iterator[dict]:
    """LegalBench ``overruling.jsonl`` (or its legalbench_dev folder): court-opinion
    sentences, consecutive ones grouped into documents."""
    path = Path(path)
    rows = iter(read_records(path / "overruling.jsonl" if path.is_dir() else path))
    n = 0
    while batch := list(islice(rows, CASE_LAW_SENTENCES)):
        yield {
            "id": f"overruling-{n:04d}",
            "title": f"Case-law sentences {n * CASE_LAW_SENTENCES + 1}-{n * CASE_LAW_SENTENCES + len(batch)} (LegalBench overruling)",
            "text": "\n\n".join(r["text"].strip() for r in batch if r.get("text", "").strip()),
            "kind": "case_law",
            "dataset": "LegalBench",
        }
        n += 1

"""The legal domain's data: CUAD read in place (hold-out, clause spans, metadata), the
importers, the sample corpus with jurisdiction and effective dates in real retrieval, and
the adapter's training data (the analyzer's exact prompt, no hold-out text, no leakage)."""
from __future__ import annotations

import json
import re
from datetime import date
from itertools import count
from pathlib import Path

import pytest
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from assistants.domains import domain_dir, settings_for
from legal.cuad import contracts, is_holdout, locate, parse_date, parse_parties, title_case
from legal.importers import case_law, cuad
from legal.training import cuad_examples, holdout_text, legalbench_examples
from shared.analysis import Checklist
from shared.analysis.judge import judge_prompt
from shared.finetune import load_finetune_config
from shared.finetune.config import DataSource
from shared.finetune.data import load, prepare
from shared.plugins import PluginError
from shared.runtime import Runtime
from shared.text import words_only

from .conftest import SHARED_DATA, requires_shared_data

LEGAL = domain_dir("legal")
CUAD = SHARED_DATA / "legal" / "cuad"
JUDGE = re.compile(r"\AClause: (?P<span>.+)\n\nQuestion: (?P<question>.+)\nAnswer Yes or No\.\Z", re.DOTALL)
HOLDOUT_SENTENCE = "Licensee shall keep complete books of account and permit Licensor to audit them once a year."


def slug(holdout: bool) -> str:
    return next(s for s in (f"contract-{i}" for i in count()) if is_holdout(s) == holdout)


@pytest.fixture
def fake_cuad(tmp_path) -> Path:
    """A two-contract CUAD folder (one in the hold-out) and a LegalBench folder beside it."""
    root = tmp_path / "cuad"
    (root / "contracts").mkdir(parents=True)
    kept, held = slug(False), slug(True)
    law = "This Agreement is governed by the laws of\n  the State of Texas."
    (root / "contracts" / f"{kept}.txt").write_text(f"SUPPLY AGREEMENT\n\nSupplier sells parts to Buyer. {law}\n")
    (root / "contracts" / f"{held}.txt").write_text(f"LICENSE AGREEMENT\n\n{HOLDOUT_SENTENCE}\n")
    cats = {"Document Name": {"clauses": [], "answer": "SUPPLY AGREEMENT"},
            "Parties": {"clauses": [], "answer": 'ACME PARTS, INC. ("Supplier"); Beta Motors LLC ("Buyer")'},
            "Agreement Date": {"clauses": [], "answer": "3/1/05"}, "Effective Date": {"clauses": [], "answer": ""},
            "Expiration Date": {"clauses": [], "answer": "perpetual"},
            "Governing Law": {"clauses": ["This Agreement is governed by the laws of the State of Texas."], "answer": "Texas"}}
    (root / "master_clauses.jsonl").write_text("\n".join(json.dumps({"id": f"cuad-{s}", "contract": s, "categories": cats})
                                                         for s in (kept, held)))
    bench = tmp_path / "legalbench_dev"
    bench.mkdir()
    question = "Does the clause give a party the right to audit the books?"
    rows = [{"text": "  licensee SHALL keep complete books of account, and permit Licensor\nto audit them once a year", "label": "Yes"},
            {"text": "Distributor may audit the warehouse records of Supplier upon ten days' notice.", "label": "Yes"}]
    (bench / "cuad_audit_rights.jsonl").write_text("\n".join(json.dumps({"id": f"lb-{i}", "question": question, **r})
                                                             for i, r in enumerate(rows)))
    return root


def test_locate_tolerates_whitespace_and_omissions():
    text = "1. Term.\nThis Agreement lasts\n   two years.  It renews\nautomatically for one year."
    assert locate(text, "This Agreement lasts two years.") == (9, text.index("years.") + 6)
    assert locate(text, "This Agreement lasts<omitted>renews automatically") is not None
    assert locate(text, "This Agreement lasts three years.") is None and locate(text, "  ") is None


def test_metadata_answers_parse():
    assert [parse_date(v) for v in ("6/21/99", "June 21, 1999", "1/1/2020", "perpetual", "[]/[]/2016", "")] == \
        ["1999-06-21", "1999-06-21", "2020-01-01", None, None, None]
    assert parse_parties('I-ESCROW, INC. ("i-Escrow"); 2TheMart ("2TheMart"); I-ESCROW, INC. and 2TheMart') == \
        ["I-ESCROW, INC.", "2TheMart"]
    assert title_case("CO-BRANDING AND ADVERTISING AGREEMENT") == "Co-Branding and Advertising Agreement"
    assert title_case("Services Agreement") == "Services Agreement"


def test_cuad_importer_skips_the_holdout_and_keeps_metadata(fake_cuad):
    (doc,) = list(cuad(fake_cuad / "master_clauses.jsonl"))
    assert doc["id"] == slug(False) and doc["title"] == "Supply Agreement between Acme Parts, Inc. and Beta Motors LLC"
    assert {k: doc[k] for k in ("parties", "agreement_date", "valid_from", "jurisdiction", "dataset")} == {
        "parties": ["Acme Parts, Inc.", "Beta Motors LLC"], "agreement_date": "2005-03-01", "valid_from": "2005-03-01",
        "jurisdiction": "Texas", "dataset": "CUAD"}
    assert "valid_to" not in doc  # "perpetual" is no date


def test_holdout_is_excluded_from_training_and_legalbench(fake_cuad):
    examples = list(cuad_examples(fake_cuad))
    assert examples and {e["group"] for e in examples} == {slug(False)}
    assert any(e["answer"] == "Yes" and "State of Texas" in e["question"] for e in examples)
    kept = list(legalbench_examples(fake_cuad.parent / "legalbench_dev"))
    assert [JUDGE.match(e["question"])["span"] for e in kept] == ["Distributor may audit the warehouse records of Supplier upon ten days' notice."]


@requires_shared_data("legal", "cuad", "master_clauses.jsonl")
def test_real_cuad_import_has_metadata_and_no_holdout():
    docs = list(cuad(CUAD))
    slugs = [c["slug"] for c in contracts(CUAD)]
    held = [s for s in slugs if is_holdout(s)]
    assert 0.07 < len(held) / len(slugs) < 0.13 and len(docs) == len(slugs) - len(held)
    assert not {d["id"] for d in docs} & set(held)
    assert sum("jurisdiction" in d for d in docs) > 0.7 * len(docs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", d["valid_from"]) for d in docs if "valid_from" in d)
    assert all(d["valid_to"] >= d["valid_from"] for d in docs if "valid_to" in d and "valid_from" in d)


@requires_shared_data("legal", "legalbench_dev", "overruling.jsonl")
def test_case_law_is_grouped_into_documents():
    docs = list(case_law(SHARED_DATA / "legal" / "legalbench_dev"))
    assert 50 < len(docs) < 500 and all(d["kind"] == "case_law" and d["dataset"] == "LegalBench" for d in docs)
    assert len({d["id"] for d in docs}) == len(docs)


@pytest.fixture
def legal(db, embedding, collection):
    """The legal domain on a fresh collection with the samples ingested."""
    s = settings_for("legal")
    rt = Runtime(s.model_copy(update={"domain": s.domain.model_copy(update={"name": collection})}), db=db)
    rt.__dict__["embedding"] = embedding
    summary = rt.ingestor().run([LEGAL / "samples"], progress=False)
    assert not summary.failed, summary.failed
    yield rt
    rt.close()


def names(hits) -> set[str]:
    return {n.node.ref_doc_id.split("/")[-1] for n in hits}


def test_samples_carry_jurisdiction_and_dates_into_retrieval(legal):
    with legal.db._admin() as conn:
        meta = {d: m for d, m in conn.execute("SELECT doc_id, metadata FROM documents WHERE collection = %s",
                                               (legal.settings.domain.name,))}
    assert len(meta) == 6 and all(m.get("jurisdiction") and m.get("valid_from") for m in meta.values())
    assert all(m.get("parties") and m.get("agreement_type") for d, m in meta.items() if "contracts/" in d)

    california = MetadataFilters(filters=[MetadataFilter(key="jurisdiction", value="California")])
    hits = legal.retriever(top_k=10, filters=california).retrieve("automatic renewal of the agreement")
    assert {n.node.metadata["jurisdiction"] for n in hits} == {"California"}
    assert names(hits) == {"software-license-agreement.md", "automatic-renewal-law.md"}
    # As of 2020 only the two older statutes were in force (the contracts and the renewal law came later).
    before = legal.retriever(top_k=10, as_of=date(2020, 1, 1)).retrieve("automatic renewal consent and cancellation")
    assert names(before) == {"data-breach-notification.md", "unfair-contract-terms.md"}


def test_records_hook_reads_folders_and_honours_optional(fake_cuad):
    hook = DataSource(path="cuad", records="cuad_examples", group="group")
    examples = list(load([hook], fake_cuad.parent))
    assert examples and {e.group for e in examples} == {slug(False)}
    assert list(load([DataSource(path="absent", records=hook.records, optional=True)], fake_cuad.parent)) == []
    with pytest.raises(PluginError, match="no training data source 'nope' is registered; known: .*cuad_examples"):
        list(load([DataSource(path="cuad", records="nope")], fake_cuad.parent))


def test_sample_training_data_uses_the_judge_prompt():
    cfg = load_finetune_config(LEGAL)
    # trained under the message the analyzer sends, which legal's config holds once
    assert cfg.data.system == "judge" and cfg.data.system_prompt is None
    judge = settings_for("legal").analysis.judge_system
    assert judge and settings_for("legal").system_message(cfg.data.system) == judge
    assert settings_for("legal").evaluation.benchmarks["legalbench"].system == "judge"
    rows = [json.loads(line) for line in (LEGAL / "train_data" / "sample_clauses.jsonl").read_text().splitlines()]
    judged = [r for r in rows if r["category"] != "terminology"]
    assert len(judged) >= 24 and {r["answer"] for r in judged} == {"Yes", "No"}
    questions = {c.question for c in Checklist.load(LEGAL / "clauses.yaml").categories}
    for r in judged:
        m = JUDGE.match(r["question"])
        assert m and m["question"] in questions and r["question"] == judge_prompt(m["span"], m["question"])


@requires_shared_data("legal", "cuad", "master_clauses.jsonl")
def test_training_data_splits_by_contract_and_holds_no_holdout_text():
    cfg = load_finetune_config(LEGAL)
    train, val, card = prepare(cfg.data, LEGAL, settings_for("legal").system_message(cfg.data.system))
    assert not {r["group"] for r in train} & {r["group"] for r in val}
    assert {r["group"] for r in train + val} & {c["slug"].lower() for c in contracts(CUAD)}  # CUAD took part
    holdout = holdout_text(CUAD)
    for row in train + val:
        user, answer = row["prompt"][-1]["content"], row["completion"][0]["content"]
        m = JUDGE.match(user)
        if m:
            assert answer in ("Yes", "No") and user == judge_prompt(m["span"], m["question"])
            assert words_only(m["span"]) not in holdout, m["span"][:80]
        elif user.startswith("Excerpt: "):
            assert words_only(answer) not in holdout

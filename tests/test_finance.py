"""The financial advisor's own pieces: dataset importers (TAT-QA tables with their rows
kept together, the bank knowledge base) through the real CLI and database."""
from __future__ import annotations

import json

from finance.importers import render_table

from .conftest import SHARED_DATA, requires_shared_data
from .test_cli import run

TABLE = [["", "", "Years Ended September 30,", ""], ["", "2019", "2018", "2017"],
         ["Fixed Price", "$ 1,452.4", "$ 1,146.2", "$ 1,036.9"], ["Segment A:", "", "", ""],
         ["Other", "44.1", "56.7", "70.8"], ["Total sales", "$1,496.5", "$1,202.9", "$1,107.7"]]


def test_table_rows_become_self_describing_lines():
    assert render_table(TABLE) == [
        "(Years Ended September 30)",
        "Fixed Price: 2019 = $ 1,452.4; 2018 = $ 1,146.2; 2017 = $ 1,036.9.",
        "Segment A, Other: 2019 = 44.1; 2018 = 56.7; 2017 = 70.8.",
        "Segment A, Total sales: 2019 = $1,496.5; 2018 = $1,202.9; 2017 = $1,107.7.",
    ]


def chunk_texts(db, doc_prefix: str) -> list[str]:
    with db._admin() as conn:
        return [t for (t,) in conn.execute("SELECT text FROM chunks WHERE collection = 'finance' AND doc_id LIKE %s",
                                           (doc_prefix + "%",))]


def test_tatqa_import_keeps_every_row_in_one_chunk(tmp_path, db):
    long_paragraphs = [f"Paragraph {i}: revenue grew because of strong demand in segment {i}. " * 6 for i in range(6)]
    big_table = [["", "2019", "2018"]] + [[f"Line item {i}", f"{i},000", f"{i},500"] for i in range(40)]
    src = tmp_path / "contexts.jsonl"
    src.write_text(json.dumps({"id": "ctx-test-1", "table": big_table, "paragraphs": long_paragraphs}) + "\n")
    out = run("import", "finance", "tatqa", str(src), "--quiet")
    assert out.returncode == 0, out.stderr
    assert "1 new" in out.stdout
    chunks = chunk_texts(db, "tatqa.jsonl#ctx-test-1")
    assert len(chunks) > 1
    for line in render_table(big_table):
        assert any(line in c for c in chunks), f"row split across chunks: {line}"
    again = run("import", "finance", "tatqa", str(src), "--quiet")
    assert "0 new, 0 changed, 1 unchanged" in again.stdout


def test_import_errors_are_clear(tmp_path, db):
    unknown = run("import", "finance", "nope", str(tmp_path / "x.jsonl"))
    assert unknown.returncode == 2 and "known: bank_kb, tatqa" in unknown.stderr
    missing = run("import", "finance", "tatqa", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "table": [], "paragraphs": ["x"]}\nnot json\n')
    broken = run("import", "finance", "tatqa", str(bad))
    assert broken.returncode == 2 and "line 2 is not valid JSON" in broken.stderr


@requires_shared_data("finance", "tatqa_contexts.jsonl")
def test_real_datasets_import_and_answer_search(db):
    assert run("import", "finance", "tatqa", str(SHARED_DATA / "finance" / "tatqa_contexts.jsonl"), "--limit", "15", "--quiet").returncode == 0
    assert run("import", "finance", "bank_kb", str(SHARED_DATA / "finance" / "rho_bank_docs.jsonl.gz"), "--limit", "15", "--quiet").returncode == 0
    first = json.loads((SHARED_DATA / "finance" / "tatqa_contexts.jsonl").open().readline())
    row = next(r for r in first["table"] if r[0].strip() and any(c.strip() for c in r[1:]))
    hit = run("search", "finance", f"{row[0]} {first['paragraphs'][0][:80]}", "-k", "3")
    assert first["id"] in hit.stdout, hit.stdout
    kb = run("search", "finance", "open a personal checking account eligibility", "-k", "3")
    assert "bank_kb.jsonl#" in kb.stdout

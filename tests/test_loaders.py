"""Loaders turn every supported file type into clean text, or fail with a clear reason."""
from __future__ import annotations

import json

import pytest

from shared.ingest import LoadError, load_file

from .files import encrypt_pdf, make_pdf


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def test_markdown_front_matter_sets_metadata_and_title(tmp_path):
    p = write(tmp_path, "rule.md", "---\ntitle: Limit rule\nvalid_from: 2025-01-01\njurisdiction: US\n---\n# Heading\nBody text.")
    (doc,) = load_file(p)
    assert doc.title == "Limit rule"
    assert doc.metadata == {"valid_from": "2025-01-01", "jurisdiction": "US"}
    assert doc.text.startswith("# Heading") and "---" not in doc.text


def test_html_drops_scripts_and_styles(tmp_path):
    p = write(tmp_path, "a.html", "<html><head><title>T</title><style>x{}</style><script>alert(1)</script></head>"
                                  "<body><h1>Hello</h1><p>World  text</p></body></html>")
    (doc,) = load_file(p)
    assert doc.title == "T" and "Hello" in doc.text and "World  text" in doc.text
    assert "alert" not in doc.text and "x{}" not in doc.text


def test_pdf_pages_are_tracked(tmp_path):
    p = write(tmp_path, "two.pdf", make_pdf(["First page says alpha.", "Second page says beta."]))
    (doc,) = load_file(p)
    assert "alpha" in doc.text and "beta" in doc.text
    assert [n for n, _ in doc.pages] == [1, 2]
    assert doc.text[doc.pages[1][1]:].startswith("Second page")


def test_csv_keeps_each_row_with_its_header(tmp_path):
    p = write(tmp_path, "funds.csv", "fund,fee\nAlpha,0.03\nBeta,0.10\n")
    (doc,) = load_file(p)
    assert doc.text.splitlines() == ["fund: Alpha; fee: 0.03", "fund: Beta; fee: 0.10"]


def test_jsonl_and_json_records(tmp_path):
    recs = [{"id": "a", "title": "Q1", "text": "Answer one.", "topic": "x"}, {"id": "b", "question": "Q2?", "answer": "Two."}]
    docs = load_file(write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n\n"))
    assert [d.key for d in docs] == ["a", "b"]
    assert docs[0].metadata == {"topic": "x"} and docs[1].title == "Q2?" and "Two." in docs[1].text
    assert [d.key for d in load_file(write(tmp_path, "r.json", json.dumps(recs)))] == ["a", "b"]


def test_legacy_encodings_are_decoded(tmp_path):
    (doc,) = load_file(write(tmp_path, "cp.txt", "Caf\xe9 cr\xe8me".encode("cp1252")))
    assert doc.text == "Café crème"
    (doc,) = load_file(write(tmp_path, "u16.txt", "Grüße".encode("utf-16")))
    assert doc.text == "Grüße"


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("empty.txt", b"", "contains no text"),
        ("blank.md", b"  \n\n ", "contains no text"),
        ("corrupt.pdf", b"%PDF-1.4\nthis is not really a pdf", "not a readable PDF|contains no text"),
        ("fake.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00" * 50, "binary"),
        ("bad.json", b"{not json", "not valid JSON"),
        ("bad.jsonl", b'{"id": 1}\n{oops\n', "line 2 is not valid JSON"),
        ("deep.json", b"[" * 100000 + b"]" * 100000, "not valid JSON|nested too deeply"),
        ("notes.docx", b"PK\x03\x04", "not a readable Word document"),
        ("notes.doc", b"\xd0\xcf\x11\xe0", "unsupported file type"),
    ],
)
def test_bad_files_fail_with_a_clear_reason(tmp_path, name, data, reason):
    with pytest.raises(LoadError, match=reason):
        load_file(write(tmp_path, name, data))


def test_encrypted_pdf_is_refused(tmp_path):
    p = write(tmp_path, "locked.pdf", encrypt_pdf(make_pdf(["Top secret."])))
    with pytest.raises(LoadError, match="encrypted"):
        load_file(p)


def test_oversized_file_is_refused(tmp_path):
    p = write(tmp_path, "big.txt", "x" * 2_000_000)
    with pytest.raises(LoadError, match="over the 1 MB limit"):
        load_file(p, max_bytes=1_000_000)

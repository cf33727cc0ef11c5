"""Loaders turn every supported file type into clean text, or fail with a clear reason."""
from __future__ import annotations

import codecs
import io
import json
import time
import tracemalloc
import zipfile

import pytest

from shared.ingest import LoadError, load_file

from .files import encrypt_pdf, make_pdf


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return p


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


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


# ---- hostile and odd input ---------------------------------------------------------------
@pytest.mark.parametrize("html, expected", [
    ("<div>" * 100_000 + "deep" + "</div>" * 100_000 + "<p>after</p>", "deep\nafter"),
    ("<table><tr><td>" * 30_000 + "cell" + "</td></tr></table>" * 30_000 + "<p>after</p>", "cell\nafter"),
    ("<ul><li>" * 100_000 + "unclosed", "unclosed"),
    # Python 3.11's html.parser (and BeautifulSoup on it) takes minutes on these runs.
    ("<p>start</p>" + "<a" * 200_000, "start"),
    ("<p>start</p>" + "</" * 200_000, "start"),
    ("<p>start</p>" + "<?" * 200_000, "start"),
])
def test_deeply_nested_or_malformed_html_is_read_quickly(tmp_path, html, expected):
    started = time.monotonic()
    (doc,) = load_file(write(tmp_path, "deep.html", html))
    assert time.monotonic() - started < 10
    assert doc.text == expected


def test_html_hidden_elements_nest_and_the_first_title_wins(tmp_path):
    html = ("<title>First</title><title>Second</title><noscript><template><p>hidden</p></template>"
            "<p>still hidden</p></noscript><p>Shown <b>bold</b></p>")
    (doc,) = load_file(write(tmp_path, "a.html", html))
    assert doc.title == "First"
    assert "hidden" not in doc.text and doc.text.endswith("Shown\nbold")


@pytest.mark.parametrize("data, expected", [
    pytest.param("Grüße, café".encode("utf-16-le"), "Grüße, café", id="utf-16-le-no-bom"),
    pytest.param("Grüße, café".encode("utf-16-be"), "Grüße, café", id="utf-16-be-no-bom"),
    pytest.param(codecs.BOM_UTF16_BE + "Grüße 日本".encode("utf-16-be"), "Grüße 日本", id="utf-16-be-bom"),
    pytest.param("Grüße 日本".encode("utf-32"), "Grüße 日本", id="utf-32-bom"),
    pytest.param(codecs.BOM_UTF8 + "Grüße".encode(), "Grüße", id="utf-8-bom"),
    pytest.param("Señor Pérez paid 10€ – “in full”".encode("cp1252"), "Señor Pérez paid 10€ – “in full”", id="cp1252"),
    pytest.param("日本語のテキストです。これはテストです。".encode("shift_jis"), "日本語のテキストです。これはテストです。",
                 id="shift-jis"),
    pytest.param("这是一个中文文本文件，用于测试。".encode("gb2312"), "这是一个中文文本文件，用于测试。", id="gb2312"),
    # A UTF-8 file with a pasted Latin-1 word: each part is read in its own encoding.
    pytest.param("Grüße aus dem ".encode() + "Café".encode("latin-1"), "Grüße aus dem Café", id="utf-8-and-latin-1"),
    # NUL and other control characters go; tab and line breaks (as "\n") stay.
    pytest.param(b"Total:\x00 42 \x07dollars\r\nNext\tline\rlast\x0cpage\x1b[0m and more ordinary words " * 3,
                 "Total: 42 dollars\nNext\tline\nlast\npage[0m and more ordinary words " * 3, id="control-characters"),
])
def test_odd_encodings_and_control_characters(tmp_path, data, expected):
    (doc,) = load_file(write(tmp_path, "odd.txt", data))
    assert doc.text == expected


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))


@pytest.mark.parametrize("name, data, kind", [
    ("image.txt", PNG, r"binary file \(a PNG image\)"),
    ("archive.md", zip_of({"a.txt": b"hi"}), r"binary file \(a ZIP archive"),
    ("program.csv", b"\x7fELF\x02\x01\x01" + bytes(range(1, 32)) * 20, r"binary file \(an executable"),
    ("report.json", make_pdf(["Hi"]), r"binary file \(a PDF document\)"),
    ("data.jsonl", bytes(range(1, 32)) * 40, "binary file, not text"),  # no magic number, all control bytes
    ("page.html", PNG, r"binary file \(a PNG image\)"),
    ("page.pdf", b"<!doctype html><html><body>Not a PDF</body></html>", r"not a PDF \(.*<!doctype html>"),
    ("plain.docx", zip_of({"notes.txt": b"hello"}), "not a readable Word document"),
    ("sheet.docx", zip_of({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
     "not a readable Word document"),
])
def test_a_file_that_is_not_what_its_name_says_is_refused(tmp_path, name, data, kind):
    with pytest.raises(LoadError, match=kind):
        load_file(write(tmp_path, name, data))


def zip_bomb_docx() -> bytes:
    """A valid Word document whose XML is padded with 101 MB of whitespace (about 100 KB zipped)."""
    import docx

    document, valid = docx.Document(), io.BytesIO()
    document.add_paragraph("Hello")
    document.save(valid)
    with zipfile.ZipFile(valid) as src:
        parts = {info.filename: src.read(info) for info in src.infolist()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for name, data in parts.items():
            if name != "word/document.xml":
                dst.writestr(name, data)
        with dst.open("word/document.xml", "w", force_zip64=True) as xml:
            head, sep, body = parts["word/document.xml"].partition(b"?>")
            xml.write(head + sep)
            for _ in range(101):
                xml.write(b" " * 1_000_000)
            xml.write(body)
    return out.getvalue()


def test_zip_bomb_docx_is_refused_without_inflating_it(tmp_path):
    path = write(tmp_path, "bomb.docx", zip_bomb_docx())
    tracemalloc.start()
    try:
        with pytest.raises(LoadError, match=r"unpacks to 10\d MB, over the 100 MB .* zip bomb"):
            load_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


@pytest.mark.parametrize("name, data, reason", [
    ("deep.jsonl", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "line 1 is nested too deeply"),
    ("deep.json", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, "nested too deeply"),
    ("bigint.json", b"1" * 5000, "not valid JSON .*4300 digits"),
    ("huge_field.csv", b'title,body\nA,"' + b"x" * 200_000 + b'"\n', r"not valid CSV \(field larger than field limit"),
])
def test_parser_limits_become_load_errors(tmp_path, name, data, reason):
    with pytest.raises(LoadError, match=reason):
        load_file(write(tmp_path, name, data))


def test_json_scalars_and_escapes_load_as_clean_storable_documents(tmp_path):
    (doc,) = load_file(write(tmp_path, "n.json", b"42"))
    assert doc.text == "42"
    rec = rb'{"id": "a\u0000b", "title": "T\ud800", "text": "x\u0000y\u001b", "score": NaN, "big": 1e999, "ok": 1.5}'
    (doc,) = load_file(write(tmp_path, "r.jsonl", rec))
    assert (doc.key, doc.title, doc.text) == ("ab", "T", "T\n\nxy")
    assert doc.metadata == {"ok": 1.5}  # NaN and infinity cannot be stored as JSON


def test_jsonl_records_end_only_at_newlines(tmp_path):
    recs = [{"id": "a", "text": "Line\u2028separator and paragraph\u2029separator, raw as JSON allows."},
            {"id": "b", "text": "B"}]
    data = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in recs)
    assert [d.key for d in load_file(write(tmp_path, "r.jsonl", data))] == ["a", "b"]


def test_front_matter_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    md = f"---\ntitle: x\nrun: !!python/object/apply:os.mkdir ['{marker}']\n---\nBody."
    with pytest.raises(LoadError, match="evil.md: the front matter is not valid YAML .*python/object"):
        load_file(write(tmp_path, "evil.md", md))
    assert not marker.exists()


def test_front_matter_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi")]
    started = time.monotonic()
    with pytest.raises(LoadError, match="aliases .* are not allowed"):
        load_file(write(tmp_path, "lol.md", "---\n" + "\n".join(lines) + "\n---\nBody."))
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("front, reason", [
    ("valid_from: 2025-13-45", "month must be in 1..12"),
    ("deep: " + "[" * 10_000, "not valid YAML .*recursion"),
    ("n: " + "9" * 5000, "4300 digits"),
])
def test_invalid_front_matter_is_a_load_error(tmp_path, front, reason):
    with pytest.raises(LoadError, match=reason):
        load_file(write(tmp_path, "bad.md", f"---\n{front}\n---\nBody."))


def test_front_matter_becomes_json_metadata(tmp_path):
    md = "---\ntitle: T\n1: one\nparties: [A, B]\ndates: [2025-01-01]\nnote: \"a\\0b\"\n---\nBody."
    (doc,) = load_file(write(tmp_path, "m.md", md))
    assert doc.metadata == {"1": "one", "parties": ["A", "B"], "dates": ["2025-01-01"], "note": "ab"}


def test_an_over_long_dashed_block_is_text_not_front_matter(tmp_path):
    md = "---\n" + "key: value\n" * 10_000 + "---\nBody."
    (doc,) = load_file(write(tmp_path, "long.md", md))
    assert doc.metadata == {} and doc.text.startswith("---\nkey: value")

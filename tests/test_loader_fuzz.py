"""Fuzzing the file loaders: whatever bytes arrive under a supported extension (random,
or a real PDF/Word/text file with bytes flipped, cut or inserted), loading ends in clean
``SourceDoc``s or a ``LoadError``. Any other exception would abort an ingestion run or
an upload, and unclean text (NUL, lone surrogates, control characters) would fail later,
in the database, far from the file that caused it."""
from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.ingest import LoadError, SourceDoc, load_file
from shared.ingest.loaders import decode

from .files import make_pdf

EXTENSIONS = (".txt", ".md", ".html", ".pdf", ".docx", ".csv", ".json", ".jsonl")
# Budgets that keep the whole file at about half a minute on two cores. No example
# database: a failure prints its example (a short list of edits) to reproduce it with.
FUZZ = settings(max_examples=1000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
UNCLEAN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_clean(s) -> None:
    assert isinstance(s, str)
    s.encode("utf-8")  # raises on a lone surrogate
    assert not UNCLEAN.search(s), repr(s)


def strings(value) -> Iterator[str]:
    """Every string in a metadata value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def load_or_refuse(path) -> None:
    """Load ``path``: a ``LoadError`` that names the file is a fine answer, clean documents
    with plain-JSON metadata (what the database stores) are the other."""
    try:
        docs = load_file(path)
    except LoadError as e:
        assert str(e).startswith(path.name + ":")
        return
    assert docs and all(isinstance(d, SourceDoc) for d in docs)
    for d in docs:
        json.dumps(d.metadata, allow_nan=False)
        for s in (d.key, d.text, d.title, *strings(d.metadata)):
            assert_clean(s)
        starts = [start for _, start in d.pages]
        assert starts == sorted(starts) and all(0 <= s <= len(d.text) for s in starts)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def fpdf_sample(compress: bool) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_compression(compress)
    pdf.set_title("Fee schedule")
    for text in ("Advisory fee: 0.25% a year.", "Page two (with parentheses) and \\ backslash."):
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def docx_sample() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Engagement letter"
    document.add_heading("Scope", level=1)
    document.add_paragraph("The adviser reviews the portfolio each quarter.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(1, 1).text = "Fee", "0.25%"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SEEDS = {
    ".txt": [b"Plain text.\nSecond line.\n"],
    ".md": [b"---\ntitle: Rule\nvalid_from: 2025-01-01\nparties: [A, B]\n---\n# Heading\nBody.\n",
            b'---\ntitle: "Quoted \\u00e9 \\0"\nat: 2026-01-01T10:00:00\nnested: {a: [1, 2.5, null, true]}\n'
            b"note: |\n  block\n---\nBody.\n"],
    ".html": [b"<html><head><title>T</title><script>x()</script></head><body><div><p>Hi <b>there</b></p>"
              b"<table><tr><td>a</td></tr></table></div></body></html>",
              b"<!DOCTYPE html><!-- c --><html><body><noscript><p>x</p></noscript><![CDATA[y]]>&amp;&#0;&#xD800;"
              b"<template><div>t</div></template><p>z</p></body></html>"],
    ".csv": [b"fund,fee\nAlpha,0.03\n\"Beta, Inc\",\"0.10\"\n"],
    ".json": [b'[{"id": "a", "title": "Q", "text": "Answer.", "n": 1.5}, {"x": [1, {"y": null}]}]'],
    ".jsonl": [b'{"id": "a", "question": "Q?", "answer": "A."}\n{"id": 2, "text": "B", "ok": true}\n'],
    ".pdf": [make_pdf(["First page.", "Second page."]), fpdf_sample(compress=False), fpdf_sample(compress=True)],
    ".docx": [docx_sample()],
}


# Edits as data, applied by ``mutate``: a failing example then prints as a short list of
# edits rather than as the whole mutated file. Inserted bytes are random, or the
# delimiters that PDF, XML and JSON nest with.
PAYLOADS = st.binary(min_size=1, max_size=16) | st.sampled_from((b"(", b")", b"<<", b"[", b"<", b"{", b"\x00"))
OPERATIONS = st.sampled_from(("flip", "insert", "delete", "truncate"))
EDITS = st.lists(st.tuples(OPERATIONS, st.integers(0, 1 << 20), PAYLOADS), min_size=1, max_size=6)


def mutate(seed: bytes, edits) -> bytes:
    """``seed`` with each (operation, position, bytes) edit applied in turn."""
    data = bytearray(seed)
    for op, at, payload in edits:
        at %= len(data) + 1
        if op == "flip" and at < len(data):
            data[at] ^= payload[0] or 0xFF
        elif op == "insert":
            data[at:at] = payload
        elif op == "delete":
            del data[at:at + len(payload) * 4]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def mutate_docx_part(part: str, edits) -> bytes:
    """The Word sample with one part (XML, relationships, content types) mutated and the
    package zipped again, so the damage reaches python-docx's parsers rather than stopping
    at a zip checksum."""
    with zipfile.ZipFile(io.BytesIO(SEEDS[".docx"][0])) as src:
        parts = {info.filename: src.read(info) for info in src.infolist()}
    parts[part] = mutate(parts[part], edits)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name, data in parts.items():
            dst.writestr(name, data)
    return out.getvalue()


DOCX_PARTS = sorted(zipfile.ZipFile(io.BytesIO(SEEDS[".docx"][0])).namelist())


def write(workdir, ext: str, data: bytes):
    path = workdir / f"fuzz{ext}"
    path.write_bytes(data)
    return path


@FUZZ
@given(ext=st.sampled_from(EXTENSIONS), data=st.binary(max_size=2048))
def test_arbitrary_bytes_load_or_refuse(workdir, ext, data):
    load_or_refuse(write(workdir, ext, data))


@FUZZ
@given(ext=st.sampled_from(EXTENSIONS), seed=st.integers(0, 2), edits=EDITS)
def test_mutated_real_files_load_or_refuse(workdir, ext, seed, edits):
    samples = SEEDS[ext]
    load_or_refuse(write(workdir, ext, mutate(samples[seed % len(samples)], edits)))


@settings(FUZZ, max_examples=300)  # each example zips a package again
@given(part=st.sampled_from(DOCX_PARTS), edits=EDITS)
def test_mutated_docx_parts_load_or_refuse(workdir, part, edits):
    load_or_refuse(write(workdir, ".docx", mutate_docx_part(part, edits)))


@FUZZ
@given(data=st.one_of(st.binary(max_size=512),
                      st.tuples(st.sampled_from((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00")),
                                st.binary(max_size=512)).map(b"".join)))
def test_decode_returns_clean_text_or_refuses(data):
    try:
        text = decode(data, "f.txt")
    except LoadError as e:
        assert "binary" in str(e)
        return
    assert_clean(text)


# Printable text: no control characters (their removal is tested above) and no lone
# surrogates (which no encoder writes).
PRINTABLE = st.text(st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t"), max_size=300)


@settings(FUZZ, max_examples=300)
@given(text=PRINTABLE, encoding=st.sampled_from(("utf-8", "utf-8-sig", "utf-16", "utf-32")))
def test_decode_reads_unicode_text_back_exactly(text, encoding):
    # A file starting with a magic number such as "%PDF-" is refused as binary, and a
    # leading U+FEFF in UTF-8 is indistinguishable from a byte-order mark.
    if text.startswith(("%PDF-", "GIF8", "Rar!", "\ufeff")):
        text = "x" + text
    assert decode(text.encode(encoding), "f.txt") == text

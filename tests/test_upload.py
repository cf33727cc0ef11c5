"""Contract uploads on the real database and embedding model: accepted files are ingested
privately for their owner, refused ones say why and leave nothing behind."""
from __future__ import annotations

import io

import pytest

from assistants.domains import domain_dir, settings_for
from shared.analysis.checklist import Checklist
from shared.analysis.export import markdown_to_pdf
from shared.analysis.upload import UploadError, accept_upload, delete_upload, ingest_upload
from shared.runtime import Runtime

from .files import encrypt_pdf, make_pdf

CONTRACT = (domain_dir("legal") / "samples" / "contracts" / "mutual-nda.txt").read_text(encoding="utf-8")
PASSAGE = "shall solicit for employment"
RECIPE = "Banana bread. Mash three ripe bananas, stir in melted butter, sugar, one egg and flour. Bake for an hour."
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@pytest.fixture
def legal(db, embedding, collection):
    """The legal domain's settings on a fresh collection, sharing the loaded model."""
    s = settings_for("legal")
    rt = Runtime(s.model_copy(update={"domain": s.domain.model_copy(update={"name": collection})}), db=db)
    rt.__dict__["embedding"] = embedding
    return rt


@pytest.fixture(scope="module")
def checklist():
    return Checklist.load(domain_dir("legal") / "clauses.yaml")


def make_docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    title, *paragraphs = text.split("\n\n")
    document.add_heading(title, level=1)
    for p in paragraphs:
        document.add_paragraph(p.replace("\n", " "))
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Signed for Ridgeway Robotics Inc.", "Signed for Lumen Health LLC"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_fpdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, text)
    return bytes(pdf.output())


def upload(rt, checklist, principal, path):
    """What the UI does with a file: check it, then store it for its owner."""
    return ingest_upload(rt, principal, path, accept_upload(rt.settings, checklist, path))


def found(rt, principal, doc_id) -> bool:
    """Whether the principal's retrieval finds the non-solicitation passage of the upload."""
    nodes = rt.retriever(principal=principal, top_k=10).retrieve("Can a party hire away the other party's employees?")
    return any(n.node.metadata["doc_id"] == doc_id and PASSAGE in " ".join(n.node.text.split()) for n in nodes)


@pytest.mark.parametrize("name, data", [
    ("nda.txt", CONTRACT.encode()),
    ("nda.docx", make_docx(CONTRACT)),
    ("nda.pdf", make_fpdf(CONTRACT)),
])
def test_contract_is_ingested_privately_and_reupload_is_a_noop(tmp_path, legal, checklist, monkeypatch, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    doc = accept_upload(legal.settings, checklist, path)
    assert PASSAGE in doc.text
    doc_id = ingest_upload(legal, "alice", path, doc)
    assert doc_id == f"@alice/uploads/{name}"
    assert found(legal, "alice", doc_id)
    assert not found(legal, "bob", doc_id) and not found(legal, None, doc_id)

    hashes = legal.store.document_hashes("alice")

    def no_write(*args, **kwargs):
        raise AssertionError("an unchanged re-upload must not write")

    monkeypatch.setattr(type(legal.store), "write_document", no_write)
    assert upload(legal, checklist, "alice", path) == doc_id
    assert legal.store.document_hashes("alice") == hashes


def test_changed_file_replaces_the_upload_and_only_its_owner_deletes_it(tmp_path, legal, checklist):
    path = tmp_path / "nda.txt"
    path.write_text(CONTRACT)
    doc_id = upload(legal, checklist, "alice", path)
    path.write_text(CONTRACT.replace(PASSAGE, "may hire"))
    assert upload(legal, checklist, "alice", path) == doc_id
    assert list(legal.store.document_hashes("alice")) == [doc_id]
    assert not found(legal, "alice", doc_id)  # the passage left with the old version

    delete_upload(legal, "bob", doc_id)  # row-level security: not bob's to delete
    assert list(legal.store.document_hashes("alice")) == [doc_id]
    delete_upload(legal, "alice", doc_id)
    assert legal.store.document_hashes("alice") == {} and legal.store.count("alice") == 0


@pytest.mark.parametrize("name, data, message", [
    ("corrupt.pdf", b"%PDF-1.4 garbage", "corrupt.pdf could not be read: not a readable PDF"),
    ("locked.pdf", encrypt_pdf(make_pdf([PASSAGE])), "encrypted (password protected)"),
    ("locked.docx", OLE_SIGNATURE + bytes(1024), "encrypted (password protected) or a legacy .doc"),
    ("empty.txt", b"", "empty.txt contains no text"),
    ("scan.pdf", make_pdf([""]), "run it through OCR"),
    ("big.txt", CONTRACT.encode() * 2, "over the 0.001 MB upload limit"),
    ("setup.exe", b"MZ\x90\x00", ".exe cannot be uploaded; upload one of .pdf, .docx, .txt"),
    ("recipe.txt", RECIPE.encode(), "this does not look like a contract"),
])
def test_refused_upload_says_why_and_changes_nothing(tmp_path, legal, checklist, name, data, message):
    (tmp_path / "nda.txt").write_text(CONTRACT)
    upload(legal, checklist, "alice", tmp_path / "nda.txt")
    before = legal.store.document_hashes("alice")
    if name == "big.txt":
        analysis = legal.settings.analysis.model_copy(update={"max_upload_mb": 0.001})
        legal.settings = legal.settings.model_copy(update={"analysis": analysis})
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UploadError) as e:
        upload(legal, checklist, "alice", path)
    assert message in str(e.value)
    assert legal.store.document_hashes("alice") == before


def test_embedding_failure_leaves_nothing_behind(tmp_path, legal, checklist, monkeypatch):
    path = tmp_path / "nda.txt"
    path.write_text(CONTRACT)
    doc = accept_upload(legal.settings, checklist, path)

    def simulated_fault(self, texts):
        raise RuntimeError("simulated fault: the embedding model crashed")

    monkeypatch.setattr(type(legal.embedding), "embed", simulated_fault)
    with pytest.raises(RuntimeError, match="simulated fault"):
        ingest_upload(legal, "alice", path, doc)
    assert legal.store.document_hashes("alice") == {} and legal.store.count("alice") == 0


def test_markdown_report_exports_to_pdf():
    from pypdf import PdfReader

    report = ("# Clause report: Mutual NDA\n\n## Governing Law\n\nDisputes are decided under **Delaware** law.\n\n"
              "> \u201cThis Agreement is governed by the laws of the State of Delaware\u2026\u201d \u2014 \u00a7 5\n\n"
              "- Found in section 5\n")
    reader = PdfReader(io.BytesIO(markdown_to_pdf(report)))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Clause report: Mutual NDA" in text and "Governing Law" in text
    assert '"This Agreement is governed by the laws of the State of Delaware..." -- \u00a7 5' in text
    assert "- Found in section 5" in text

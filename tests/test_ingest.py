"""Incremental, idempotent ingestion on the real database and embedding model."""
from __future__ import annotations

import pytest

from assistants.domains import DOMAINS, samples_dir, settings_for
from shared.ingest import Ingestor

from .files import make_pdf


@pytest.fixture
def ingestor(store, embedding, settings):
    return Ingestor(store, embedding, settings.chunking, settings.ingest)


def corpus(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("---\nvalid_from: 2024-01-01\n---\n# Alpha\n" + "Alpha clause on governing law. " * 120)
    (root / "b.txt").write_text("Beta notes about termination for convenience.")
    (root / "sub" / "c.html").write_text("<title>Gamma</title><p>Gamma page on liability caps.</p>")
    (root / "sub" / "d.pdf").write_bytes(make_pdf(["Delta page one on escrow.", "Delta page two on audits."]))
    (root / "e.jsonl").write_text('{"id": "r1", "text": "Record one on insurance."}\n{"id": "r2", "text": "Record two on warranties."}\n')
    (root / ".hidden.txt").write_text("never ingested")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    return root


def chunk_rows(store):
    with store.client.session() as conn:
        return conn.execute("SELECT doc_id, text, metadata FROM chunks WHERE collection = %s", (store.collection,)).fetchall()


def test_first_run_then_noop_then_change_then_prune(tmp_path, ingestor, store):
    root = corpus(tmp_path)
    s = ingestor.run([root], progress=False)
    assert (s.new, s.changed, s.unchanged) == (6, 0, 0)
    assert [f for f, _ in s.failed] == [str(root / "broken.pdf")]  # reported by name, run not aborted
    ids = set(store.document_hashes())
    assert ids == {"corpus/a.md", "corpus/b.txt", "corpus/sub/c.html", "corpus/sub/d.pdf", "corpus/e.jsonl#r1", "corpus/e.jsonl#r2"}
    n_chunks = len(chunk_rows(store))
    assert n_chunks == s.chunks > 6  # a.md is long enough to split

    s = ingestor.run([root], progress=False)
    assert (s.new, s.changed, s.unchanged, s.chunks) == (0, 0, 6, 0)
    assert len(chunk_rows(store)) == n_chunks

    (root / "b.txt").write_text("Beta notes, revised: termination needs ninety days notice.")
    s = ingestor.run([root], progress=False)
    assert (s.new, s.changed, s.unchanged) == (0, 1, 5)
    texts = [t for d, t, _ in chunk_rows(store) if d == "corpus/b.txt"]
    assert texts == ["Beta notes, revised: termination needs ninety days notice."]

    (root / "sub" / "c.html").unlink()
    (root / "e.jsonl").write_text('{"id": "r1", "text": "Record one on insurance."}\n')
    s = ingestor.run([root], progress=False)
    assert s.pruned == 0  # without --prune nothing is removed
    s = ingestor.run([root], prune=True, progress=False)
    assert s.pruned == 2
    assert {d for d, _, _ in chunk_rows(store)} == {"corpus/a.md", "corpus/b.txt", "corpus/sub/d.pdf", "corpus/e.jsonl#r1"}


def test_failed_file_keeps_its_previous_version_on_prune(tmp_path, ingestor, store):
    root = tmp_path / "c"
    root.mkdir()
    (root / "x.json").write_text('{"title": "X", "text": "Original text."}')
    ingestor.run([root], progress=False)
    (root / "x.json").write_text("{corrupted")
    s = ingestor.run([root], prune=True, progress=False)
    assert len(s.failed) == 1 and s.pruned == 0
    assert [t for _, t, _ in chunk_rows(store)] == ["X\n\nOriginal text."]


def test_chunks_cite_exact_spans_pages_and_dates(tmp_path, ingestor, store):
    root = corpus(tmp_path)
    ingestor.run([root], progress=False)
    sources = {"corpus/a.md": (root / "a.md").read_text().split("---\n", 2)[2]}
    for doc_id, text, meta in chunk_rows(store):
        assert meta["doc_id"] == doc_id and meta["title"]
        if doc_id in sources:
            assert sources[doc_id][meta["char_start"]:meta["char_end"]] == text
            assert meta["valid_from"] == "2024-01-01"
        if doc_id == "corpus/sub/d.pdf":
            assert meta["page"] == 1 and meta["n_pages"] == 2
    with store.client.session() as conn:
        (vf,) = conn.execute("SELECT DISTINCT valid_from FROM chunks WHERE collection = %s AND doc_id = 'corpus/a.md'",
                             (store.collection,)).fetchone()
    assert str(vf) == "2024-01-01"


def test_private_ingestion_is_invisible_to_others(tmp_path, store, embedding, settings):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "portfolio.txt").write_text("Carol owns 40 shares of Initech.")
    Ingestor(store, embedding, settings.chunking, settings.ingest).run([root], progress=False)  # a public copy
    Ingestor(store, embedding, settings.chunking, settings.ingest, principal="carol").run([root], progress=False)
    assert store.document_hashes("dave") == {}
    assert list(store.document_hashes()) == ["mine/portfolio.txt"]
    assert list(store.document_hashes("carol")) == ["@carol/mine/portfolio.txt"]
    with store.client.session("dave") as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE collection = %s", (store.collection,)).fetchone()[0] == 1


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_sample_corpus_ingests_and_answers(domain, db):
    """The main job, per domain: its samples ingest cleanly and retrieval finds them."""
    from shared.runtime import Runtime

    rt = Runtime(settings_for(domain), db=db)
    summary = rt.ingestor().run([samples_dir(domain)], prune=True, progress=False)
    assert summary.failed == []
    assert summary.new + summary.changed + summary.unchanged >= 3
    again = rt.ingestor().run([samples_dir(domain)], prune=True, progress=False)
    assert again.new == again.changed == again.chunks == 0
    question = {"finance": "What is the IRA contribution limit?", "medical": "signs of a stroke",
                "legal": "Which law governs the cloud services agreement?"}[domain]
    hits = rt.retriever().retrieve(question)
    assert hits and hits[0].node.metadata["doc_id"].startswith("samples/")

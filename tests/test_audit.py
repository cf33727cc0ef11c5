"""Per-principal export and erasure (shared/audit.py, `assistants audit`) on the real
database: two principals with a recorded conversation (sources, feedback), a private
document and a login each, next to a public document; erasing one leaves every other row
exactly as it was."""
from __future__ import annotations

import json
import uuid

import pytest

from shared import audit
from shared.api_keys import ApiKeys
from shared.auth import Users
from shared.chat import Passage
from shared.chat.recorder import Recorder
from shared.ingest import Ingestor
from shared.store import PgVectorStore

from .test_cli import run

# table -> the column naming whose row it is
OWNED_BY = {"conversations": "principal", "messages": "principal", "message_sources": "principal",
            "feedback": "principal", "training_candidates": "principal", "documents": "owner", "chunks": "owner",
            "users": "username", "api_keys": "principal"}


@pytest.fixture(scope="module")
def corpus(settings, db, embedding, tmp_path_factory):
    """A throwaway collection holding one public document, and how to add a file to it."""
    store = PgVectorStore(db, "audit_" + uuid.uuid4().hex[:10], settings.retrieval)

    def ingest(path, principal=None):
        ingestor = Ingestor(store, embedding, settings.chunking, settings.ingest, principal=principal)
        assert not ingestor.run([path], progress=False).failed

    public = tmp_path_factory.mktemp("public") / "public-guide.txt"
    public.write_text("Index funds spread an investment over many companies at a low fee.")
    ingest(public)
    yield store.collection, ingest
    db.drop_collection(store.collection)


def make_person(db, corpus, tmp_path, tag: str) -> dict:
    """A principal with a login, a private document and one answered, rated question."""
    collection, ingest = corpus
    who = f"audit-{tag}-{uuid.uuid4().hex[:10]}"
    Users(db).add(who, password_hash="scrypt$test", display_name=f"Person {tag.upper()}")
    ApiKeys(db).create(who)
    doc = tmp_path / f"{who}-notes.txt"
    doc.write_text(f"Private notes of {who}: my pension pot is 41,{tag}00 and I plan to retire at 60.")
    ingest(doc, who)
    with db.owner_session() as conn:
        (node, doc_id), = conn.execute("SELECT node_id, doc_id FROM chunks WHERE collection = %s AND owner = %s",
                                       (collection, who)).fetchall()
        (public_node, public_doc), = conn.execute(
            "SELECT node_id, doc_id FROM chunks WHERE collection = %s AND owner IS NULL", (collection,)).fetchall()
    rec = Recorder(db, collection)
    cid = rec.start(who)
    question = f"When can {who} retire?"
    rec.add_question(who, cid, question)
    passages = [Passage(rank=1, node_id=node, doc_id=doc_id, title="notes", text="", score=0.9, similarity=0.8,
                        in_prompt=True, cited=True),
                Passage(rank=2, node_id=public_node, doc_id=public_doc, title="guide", text="", score=0.4,
                        similarity=None)]
    answer = rec.add_answer(who, cid, "At 60 [1].", retrieval_query=question, grounded=True,
                            generator={"backend": "llamacpp", "model": "test-model"}, timings={"total_ms": 12.5},
                            usage={"prompt_tokens": 40}, passages=passages)
    rec.feedback(who, answer, -1, f"too short for {tag}")
    rec.correct(who, answer, f"At sixty, with the pension pot of {tag}.")  # a proposed training example
    return {"who": who, "question": question, "doc_id": doc_id, "node": node, "public_node": public_node}


@pytest.fixture
def a(db, corpus, tmp_path):
    return make_person(db, corpus, tmp_path, "a")


@pytest.fixture
def b(db, corpus, tmp_path):
    return make_person(db, corpus, tmp_path, "b")


def rows_of(db, principal: str) -> dict[str, list[str]]:
    """Every row of the principal in every table, as its full text form (embeddings included)."""
    with db.owner_session() as conn:
        return {t: [r for (r,) in conn.execute(f"SELECT x::text FROM {t} x WHERE {col} = %s ORDER BY 1", (principal,))]
                for t, col in OWNED_BY.items()}


def everything_but(db, collection: str, principal: str) -> dict:
    """The public rows of the test collection in full, and how many rows in each table
    belong to anyone but ``principal`` (other collections and principals included)."""
    with db.owner_session() as conn:
        public = {t: [r for (r,) in conn.execute(
            f"SELECT x::text FROM {t} x WHERE collection = %s AND owner IS NULL ORDER BY 1",
            (collection,))] for t in ("documents", "chunks")}
        others = {t: conn.execute(f"SELECT count(*) FROM {t} WHERE {col} IS DISTINCT FROM %s",
                                  (principal,)).fetchone()[0] for t, col in OWNED_BY.items()}
    return {"public": public, "others": others}


def test_export_has_all_of_a_and_nothing_of_b(db, a, b):
    record = audit.export(db, a["who"])
    text = json.dumps(record)  # serialisable as is
    assert b["who"] not in text and b["question"] not in text and b["doc_id"] not in text
    assert "password" not in text and "embedding" not in text
    assert record["account"]["username"] == a["who"] and record["account"]["display_name"] == "Person A"
    assert not record["account"]["disabled"]
    (conv,) = record["conversations"]
    question, answer = conv["messages"]
    assert (question["role"], question["content"], question["sources"], question["feedback"]) == \
        ("user", a["question"], [], None)
    assert answer["role"] == "assistant" and answer["grounded"] and answer["model"] == "test-model"
    assert answer["timings"] == {"total_ms": 12.5} and answer["usage"] == {"prompt_tokens": 40}
    assert [(s["rank"], s["node_id"], s["cited"], s["in_prompt"]) for s in answer["sources"]] == \
        [(1, a["node"], True, True), (2, a["public_node"], False, False)]
    assert answer["feedback"]["rating"] == -1 and answer["feedback"]["comment"] == "too short for a"
    (doc,) = record["documents"]  # the private one only: the public document is nobody's data
    assert doc["doc_id"] == a["doc_id"] and doc["chunks"] == 1 and doc["source"].endswith("-notes.txt")
    (proposal,) = record["training_proposals"]
    assert (proposal["kind"], proposal["question"], proposal["status"]) == ("corrected", a["question"], "pending")


def test_erase_removes_a_and_leaves_every_other_row_unchanged(db, corpus, a, b):
    b_before, rest_before = rows_of(db, b["who"]), everything_but(db, corpus[0], a["who"])
    counts = audit.erase(db, a["who"])
    assert counts == {"training_candidates": 1, "feedback": 1, "message_sources": 2, "messages": 2, "conversations": 1,
                      "chunks": 1, "documents": 1, "users": 1, "api_keys": 1}
    assert all(rows == [] for rows in rows_of(db, a["who"]).values())
    assert rows_of(db, b["who"]) == b_before and everything_but(db, corpus[0], a["who"]) == rest_before
    assert all(len(v) for v in b_before.values())  # B really had a row in every table to compare
    assert set(audit.erase(db, a["who"]).values()) == {0}  # a second erasure finds nothing


def test_erase_can_keep_documents(db, a):
    counts = audit.erase(db, a["who"], documents=False)
    assert "documents" not in counts and "chunks" not in counts
    left = rows_of(db, a["who"])
    assert len(left["documents"]) == 1 and len(left["chunks"]) == 1 and left["messages"] == []


def test_erase_refuses_to_cascade_into_another_principal(db, a, b):
    with db.owner_session() as conn:  # possible: a foreign-key check does not consult row-level security
        conn.execute("INSERT INTO messages (conversation_id, principal, role, content)"
                     " SELECT conversation_id, %s, 'user', 'intruder' FROM messages WHERE principal = %s LIMIT 1",
                     (b["who"], a["who"]))
    before = rows_of(db, a["who"]), rows_of(db, b["who"])
    with pytest.raises(audit.ErasureRefused, match="1 row"):
        audit.erase(db, a["who"])
    assert (rows_of(db, a["who"]), rows_of(db, b["who"])) == before
    audit.erase(db, b["who"])  # takes the intruding message with it, so A's erasure may proceed
    assert audit.erase(db, a["who"])["messages"] == 2


@pytest.mark.parametrize("principal", ["", "  ", None])
def test_empty_principal_is_refused(db, principal):
    with pytest.raises(ValueError):
        audit.erase(db, principal)
    with pytest.raises(ValueError):
        audit.export(db, principal)


def test_cli_export_and_erase(db, a, tmp_path):
    out = tmp_path / "a.json"
    exported = run("audit", "export", a["who"], "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["conversations"][0]["messages"][0]["content"] == a["question"]
    assert "conversations 1, messages 2, sources 2, feedback 1, documents 1, account 1" in exported.stderr
    before = rows_of(db, a["who"])
    unconfirmed = run("audit", "erase", a["who"])
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert rows_of(db, a["who"]) == before
    erased = run("audit", "erase", a["who"], "--yes")
    assert erased.returncode == 0, erased.stderr
    assert "messages 2" in erased.stdout and all(r == [] for r in rows_of(db, a["who"]).values())

"""The llama-index vector store on psycopg 3 + pgvector: one contract over every query
mode, filters, as-of retrieval, deletion, and row-level security."""
from __future__ import annotations

from datetime import date

import psycopg
import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition, FilterOperator, MetadataFilter, MetadataFilters, VectorStoreQuery, VectorStoreQueryMode,
)

MODES = {"vector": VectorStoreQueryMode.DEFAULT, "text": VectorStoreQueryMode.TEXT_SEARCH,
         "hybrid": VectorStoreQueryMode.HYBRID}

PASSAGES = [
    ("d1", "The governing law of this agreement is the law of the State of New York.", {"kind": "contract", "year": 2019}),
    ("d2", "Tenants must give sixty days notice before terminating a residential lease.", {"kind": "lease", "year": 2021}),
    ("d3", "Hypertension is persistently high blood pressure in the arteries.", {"kind": "medical", "year": 2022}),
    ("d4", "An index fund tracks a market index at a low expense ratio.", {"kind": "finance", "year": 2023, "tags": ["funds", "index"]}),
    ("d5", "Either party may terminate the services agreement for convenience with thirty days notice.", {"kind": "contract", "year": 2024}),
]


def make_nodes(embedding, passages, **extra_meta):
    vecs = embedding.embed([t for _, t, _ in passages])
    return [
        TextNode(id_=f"{doc}-n", text=text, metadata={**meta, **extra_meta}, embedding=v.tolist(),
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)})
        for (doc, text, meta), v in zip(passages, vecs)
    ]


def q(embedding, text, mode="hybrid", k=3, filters=None):
    return VectorStoreQuery(query_str=text, query_embedding=embedding.get_query_embedding(text),
                            similarity_top_k=k, mode=MODES[mode], filters=filters)


@pytest.fixture
def filled(store, embedding):
    store.add(make_nodes(embedding, PASSAGES))
    return store


@pytest.mark.parametrize("mode", MODES)
def test_contract_finds_the_relevant_passage(filled, embedding, mode):
    res = filled.query(q(embedding, "which state's law governs the agreement", mode))
    assert res.ids[0] == "d1-n"
    assert len(res.nodes) <= 3 and len(res.nodes) == len(res.similarities) == len(res.ids)
    assert res.similarities == sorted(res.similarities, reverse=True)
    assert res.nodes[0].ref_doc_id == "d1"


@pytest.mark.parametrize("mode", MODES)
def test_a_pasted_page_as_the_query_still_retrieves(filled, embedding, mode):
    """A clause pasted as the question (a LegalBench item) crashed text search: websearch
    syntax read its "-----" rule line as nested negations ("tsquery stack too small")."""
    import random

    words = [f"{w}{i}" for i, w in enumerate(random.Random(3).choices(["term", "notice", "party", "clause"], k=1500))]
    pasted = "which state's law governs the -------------------------------- agreement - \"" + " ".join(words)
    res = filled.query(q(embedding, pasted, mode))
    assert res.ids and res.ids[0] == "d1-n"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "flt, allowed",
    [
        (MetadataFilter(key="kind", value="contract"), {"d1-n", "d5-n"}),
        (MetadataFilter(key="year", value=2021, operator=FilterOperator.GT), {"d3-n", "d4-n", "d5-n"}),
        (MetadataFilter(key="kind", value=["lease", "finance"], operator=FilterOperator.IN), {"d2-n", "d4-n"}),
        (MetadataFilter(key="kind", value=["contract"], operator=FilterOperator.NIN), {"d2-n", "d3-n", "d4-n"}),
        (MetadataFilter(key="tags", value="index", operator=FilterOperator.CONTAINS), {"d4-n"}),
        (MetadataFilter(key="kind", value="CONTR", operator=FilterOperator.TEXT_MATCH_INSENSITIVE), {"d1-n", "d5-n"}),
        (MetadataFilter(key="doc_id", value="d2"), {"d2-n"}),
    ],
)
def test_contract_metadata_filters(filled, embedding, mode, flt, allowed):
    res = filled.query(q(embedding, "terminate agreement notice law", mode, k=5, filters=MetadataFilters(filters=[flt])))
    assert set(res.ids) <= allowed
    if mode != "text":
        assert set(res.ids) == allowed  # vector/hybrid return every allowed row at k=5


def test_or_and_nested_filters(filled, embedding):
    f = MetadataFilters(condition=FilterCondition.OR, filters=[
        MetadataFilter(key="kind", value="medical"),
        MetadataFilters(filters=[MetadataFilter(key="kind", value="contract"),
                                 MetadataFilter(key="year", value=2020, operator=FilterOperator.LT)]),
    ])
    res = filled.query(q(embedding, "anything at all", "vector", k=5, filters=f))
    assert set(res.ids) == {"d1-n", "d3-n"}


@pytest.mark.parametrize("mode", MODES)
def test_as_of_retrieval(store, embedding, mode):
    versions = [
        ("limit-2025", "The annual contribution limit is 7000 dollars.", {"valid_from": "2025-01-01", "valid_to": "2026-01-01"}),
        ("limit-2026", "The annual contribution limit is 7500 dollars.", {"valid_from": "2026-01-01"}),
    ]
    store.add(make_nodes(embedding, versions))
    query = q(embedding, "annual contribution limit", mode, k=5)
    assert store.query(query, as_of=date(2025, 6, 1)).ids == ["limit-2025-n"]
    assert store.query(query, as_of="2026-02-01").ids == ["limit-2026-n"]
    assert store.query(query, as_of=date(2024, 1, 1)).ids == []
    assert set(store.query(query).ids) == {"limit-2025-n", "limit-2026-n"}


def test_delete_by_document_and_get_nodes(filled, embedding):
    assert {n.node_id for n in filled.get_nodes()} == {f"d{i}-n" for i in range(1, 6)}
    filled.delete("d1")
    res = filled.query(q(embedding, "governing law New York", "hybrid", k=5))
    assert "d1-n" not in res.ids and res.ids
    filled.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="kind", value="contract")]))
    assert {n.node_id for n in filled.get_nodes()} == {"d2-n", "d3-n", "d4-n"}
    node = filled.get_nodes(node_ids=["d4-n"])[0]
    assert node.metadata["tags"] == ["funds", "index"] and node.ref_doc_id == "d4"


def test_re_adding_a_node_replaces_it(store, embedding):
    store.add(make_nodes(embedding, PASSAGES[:1]))
    store.add(make_nodes(embedding, [("d1", "Replaced text about Delaware law.", {})]))
    nodes = store.get_nodes()
    assert [n.text for n in nodes] == ["Replaced text about Delaware law."]


@pytest.fixture
def big(store, db):
    """3,000 rows (random unit vectors, text from a small vocabulary), analysed, so the
    planner makes the choices it makes in production."""
    import random

    import numpy as np

    rnd = random.Random(1)
    vocab = "lease tenant landlord notice payment clause court statute breach remedy fund bond risk".split()
    vecs = np.random.default_rng(1).normal(size=(3000, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    nodes = [TextNode(id_=f"b{i}", text=" ".join(rnd.choices(vocab, k=40)) + (" governing law" if i % 100 == 0 else ""),
                      embedding=v.tolist()) for i, v in enumerate(vecs)]
    with store.bulk_load():
        store.add(nodes)
    with db._admin() as conn:
        conn.execute(f"ANALYZE chunks_{store.collection}")
    return store


@pytest.mark.parametrize("mode, index", [
    ("vector", "embedding_hnsw"),
    ("text", "tsv_idx"),  # under RLS this needs the leakproof @@ of migration 0002
    ("hybrid", "tsv_idx"),
    ("hybrid", "embedding_hnsw"),
])
def test_queries_use_their_index_under_rls(big, db, mode, index):
    from psycopg import sql

    from shared.store import queries

    stmt = queries.build(mode, collection=big.collection, where=sql.SQL("TRUE"), k=5, candidates=40,
                         rrf_k=60, scan_cap=100, ts_config="english")
    with db.session("alice", queries.search_gucs(40)) as conn:
        q = conn.execute("SELECT embedding FROM chunks WHERE node_id = 'b7'").fetchone()[0]
        plan = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN ") + stmt, {"q": q, "text": "governing law"}).fetchall())
    assert f"chunks_{big.collection}_{index}" in plan, plan


def test_llama_index_retriever_integration(filled, embedding):
    from llama_index.core import VectorStoreIndex

    index = VectorStoreIndex.from_vector_store(filled, embed_model=embedding)
    hits = index.as_retriever(similarity_top_k=2, vector_store_query_mode="hybrid").retrieve("blood pressure")
    assert hits[0].node.node_id == "d3-n" and len(hits) == 2


# ---- row-level security ----------------------------------------------------------------
@pytest.fixture
def private(store, embedding):
    store.add(make_nodes(embedding, [("pub", "Public guidance on index funds and fees.", {})]))
    store.add(make_nodes(embedding, [("a-doc", "Alice holds 300 shares of ACME in her brokerage account.", {"owner_hint": "alice"})]), principal="alice")
    store.add(make_nodes(embedding, [("b-doc", "Bob holds 500 shares of ACME in his brokerage account.", {"owner_hint": "bob"})]), principal="bob")
    return store


CRAFTED = [
    None,
    MetadataFilters(filters=[MetadataFilter(key="owner_hint", value="bob")]),
    MetadataFilters(filters=[MetadataFilter(key="owner", value="bob")]),
    MetadataFilters(filters=[MetadataFilter(key="x') OR TRUE OR ('1'='1", value="y' OR '1'='1")]),
    MetadataFilters(condition=FilterCondition.OR, filters=[MetadataFilter(key="owner_hint", value="bob"),
                                                            MetadataFilter(key="owner_hint", value="alice")]),
    MetadataFilters(filters=[MetadataFilter(key="doc_id", value=["b-doc", "a-doc", "pub"], operator=FilterOperator.IN)]),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("crafted", range(len(CRAFTED)))
def test_a_principal_never_sees_anothers_rows(private, embedding, mode, crafted):
    res = private.query(q(embedding, "how many ACME shares does Bob hold", mode, k=10, filters=CRAFTED[crafted]),
                        principal="alice")
    assert "b-doc-n" not in res.ids
    assert all("Bob" not in n.text for n in res.nodes)
    anonymous = private.query(q(embedding, "ACME shares brokerage account", mode, k=10))
    assert not {"a-doc-n", "b-doc-n"} & set(anonymous.ids)


def test_owner_sees_own_and_public_rows(private, embedding):
    res = private.query(q(embedding, "ACME shares index funds", "vector", k=10), principal="bob")
    assert set(res.ids) == {"b-doc-n", "pub-n"}


def test_direct_sql_under_the_app_role(private, db):
    coll = private.collection
    with db.session("alice") as conn:
        rows = conn.execute("SELECT doc_id FROM chunks WHERE collection = %s ORDER BY doc_id", (coll,)).fetchall()
        assert [r[0] for r in rows] == ["a-doc", "pub"]
        assert conn.execute("SELECT count(*) FROM chunks WHERE owner = 'bob'").fetchone()[0] == 0
        # Deleting Bob's rows is a silent no-op: they are invisible.
        assert conn.execute("DELETE FROM chunks WHERE owner = 'bob' OR TRUE AND collection = %s AND owner IS NOT NULL",
                            (coll,)).rowcount == 1  # alice's own row only
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the partition is not a back door
        with db.session("alice") as conn:
            conn.execute(f"SELECT count(*) FROM chunks_{coll}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        with db.session("alice") as conn:  # writing a row as someone else
            conn.execute("INSERT INTO chunks (collection, node_id, doc_id, owner, text, embedding)"
                         " VALUES (%s, 'x', 'x', 'bob', 'forged', array_fill(0.1, ARRAY[384])::vector)", (coll,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.session("alice") as conn:  # a principal cannot switch identity mid-transaction...
            conn.execute("SET ROLE postgres")
    with db.session("bob") as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE owner = 'bob' AND collection = %s", (coll,)).fetchone()[0] == 1


def test_bulk_load_builds_the_index_once_afterwards(store, embedding, db):
    def has_index() -> bool:
        with db._admin() as conn:
            return conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                                (f"chunks_{store.collection}_embedding_hnsw",)).fetchone()[0] == 1

    assert has_index()
    with store.bulk_load():
        store.add(make_nodes(embedding, PASSAGES))
        assert not has_index()
        assert store.query(q(embedding, "blood pressure", "vector", k=1)).ids == ["d3-n"]  # exact scan meanwhile
    assert has_index()
    assert store.query(q(embedding, "blood pressure", "vector", k=1)).ids == ["d3-n"]

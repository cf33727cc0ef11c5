"""``PgVectorStore``: a llama-index ``BasePydanticVectorStore`` on psycopg 3 + pgvector.

- writes: binary ``COPY`` into a temp staging table, then one ``INSERT ... SELECT`` (COPY
  cannot write into a table with row-level security, the staging hop keeps COPY's speed);
- reads: ``vector`` (HNSW cosine), ``text`` (GIN tsvector) or ``hybrid`` (both, fused by
  reciprocal rank in one statement), each scoped by RLS to the caller's principal;
- as-of retrieval over first-class ``valid_from``/``valid_to`` columns."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterable, Sequence

import numpy as np
from llama_index.core.schema import BaseNode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from psycopg import sql
from psycopg.types.json import Jsonb
from pydantic import PrivateAttr

from ..db import Database
from ..settings import RetrievalSettings
from . import queries
from .filters import FilterTranslator

_STAGE_COLS = ("node_id", "doc_id", "owner", "text", "metadata", "valid_from", "valid_to", "embedding")
_STAGE_TYPES = ("text", "text", "text", "text", "jsonb", "date", "date", "vector")
_MODES = {
    VectorStoreQueryMode.DEFAULT: None,  # the configured default mode
    VectorStoreQueryMode.TEXT_SEARCH: "text",
    VectorStoreQueryMode.SPARSE: "text",
    VectorStoreQueryMode.HYBRID: "hybrid",
}


@dataclass
class DocumentRecord:
    """One source document as the ingestion pipeline tracks it."""

    doc_id: str
    content_hash: str
    source: str | None = None
    title: str | None = None
    metadata: dict = field(default_factory=dict)
    valid_from: date | None = None
    valid_to: date | None = None


SIMILARITY_KEY = "vector_similarity"  # query-time cosine similarity, set on returned nodes only


def as_date(v: Any) -> date | None:
    if v is None or v == "":
        return None
    if isinstance(v, date):
        return v
    return date.fromisoformat(str(v)[:10])


def _row(node: BaseNode, owner: str | None) -> tuple:
    meta = dict(node.metadata)
    if node.start_char_idx is not None:
        meta["char_start"], meta["char_end"] = node.start_char_idx, node.end_char_idx
    emb = node.get_embedding()
    return (
        node.node_id, node.ref_doc_id or node.node_id, owner, node.get_content(),
        Jsonb(json.loads(json.dumps(meta, default=str))),
        as_date(meta.get("valid_from")), as_date(meta.get("valid_to")),
        np.asarray(emb, dtype=np.float32),
    )


def _node(row: dict) -> TextNode:
    meta = row["metadata"]
    if row.get("similarity") is not None:
        meta[SIMILARITY_KEY] = float(row["similarity"])
    return TextNode(
        id_=row["node_id"],
        text=row["text"],
        metadata=meta,
        start_char_idx=meta.get("char_start"),
        end_char_idx=meta.get("char_end"),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=row["doc_id"])},
        excluded_llm_metadata_keys=[SIMILARITY_KEY], excluded_embed_metadata_keys=[SIMILARITY_KEY],
    )


class PgVectorStore(BasePydanticVectorStore):
    """One collection (a domain) of the shared ``chunks`` table."""

    stores_text: bool = True
    flat_metadata: bool = False
    collection: str
    ef_search: int = 40
    text_search_config: str = "english"

    _db: Database = PrivateAttr()
    _retrieval: RetrievalSettings = PrivateAttr()

    def __init__(self, db: Database, collection: str, retrieval: RetrievalSettings | None = None, **kw: Any):
        super().__init__(
            collection=collection,
            ef_search=db.settings.hnsw_ef_search,
            text_search_config=db.settings.text_search_config,
            **kw,
        )
        self._db = db
        self._retrieval = retrieval or RetrievalSettings()
        db.ensure_collection(collection)

    @classmethod
    def class_name(cls) -> str:
        return "PgVectorStore"

    @property
    def client(self) -> Database:
        return self._db

    def bulk_load(self):
        """Context manager for large loads: the HNSW index is built once, afterwards."""
        return self._db.bulk_load(self.collection)

    def count(self, principal: str | None = None) -> int:
        with self._db.session(principal) as conn:
            return conn.execute("SELECT count(*) FROM chunks WHERE collection = %s", (self.collection,)).fetchone()[0]

    # ---- writes -----------------------------------------------------------------------
    def _stage(self, conn, rows: Iterable[tuple]) -> None:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS stage_chunks (node_id text, doc_id text, owner text, text text,"
            " metadata jsonb, valid_from date, valid_to date, embedding vector) ON COMMIT DELETE ROWS"
        )
        with conn.cursor().copy(
            f"COPY stage_chunks ({', '.join(_STAGE_COLS)}) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.set_types(list(_STAGE_TYPES))
            for r in rows:
                cp.write_row(r)
        conn.execute(
            sql.SQL(
                "INSERT INTO chunks (collection, {cols}) SELECT {coll}, {cols} FROM stage_chunks"
            ).format(cols=sql.SQL(", ").join(map(sql.Identifier, _STAGE_COLS)), coll=sql.Literal(self.collection))
        )

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Insert (or replace, by node id) nodes that carry embeddings.
        ``principal=``: owner of the rows (None: public, from the system context)."""
        principal = kwargs.get("principal")
        if not nodes:
            return []
        with self._db.session(principal) as conn:
            conn.execute(
                "DELETE FROM chunks WHERE collection = %s AND node_id = ANY(%s)",
                (self.collection, [n.node_id for n in nodes]),
            )
            self._stage(conn, (_row(n, principal) for n in nodes))
        return [n.node_id for n in nodes]

    def write_document(self, doc: DocumentRecord, nodes: Sequence[BaseNode], principal: str | None = None) -> None:
        """Atomically replace a document and all its chunks: readers see the old version
        or the new one, never a mix, and a crash leaves the old one intact."""
        with self._db.session(principal) as conn:
            conn.execute("DELETE FROM chunks WHERE collection = %s AND doc_id = %s", (self.collection, doc.doc_id))
            self._stage(conn, (_row(n, principal) for n in nodes))
            conn.execute(
                "INSERT INTO documents (collection, doc_id, owner, source, title, content_hash, metadata,"
                " valid_from, valid_to, n_chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (collection, doc_id) DO UPDATE SET owner = EXCLUDED.owner, source = EXCLUDED.source,"
                " title = EXCLUDED.title, content_hash = EXCLUDED.content_hash, metadata = EXCLUDED.metadata,"
                " valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to, n_chunks = EXCLUDED.n_chunks,"
                " ingested_at = now()",
                (self.collection, doc.doc_id, principal, doc.source, doc.title, doc.content_hash,
                 Jsonb(json.loads(json.dumps(doc.metadata, default=str))), doc.valid_from, doc.valid_to, len(nodes)),
            )

    def document_hashes(self, principal: str | None = None) -> dict[str, tuple[str, str | None]]:
        """doc_id -> (content hash, source) for the documents this principal owns
        (public documents when ``principal`` is None)."""
        with self._db.session(principal) as conn:
            rows = conn.execute(
                "SELECT doc_id, content_hash, source FROM documents"
                " WHERE collection = %s AND owner IS NOT DISTINCT FROM app_principal()", (self.collection,)
            ).fetchall()
        return {d: (h, s) for d, h, s in rows}

    def delete(self, ref_doc_id: str, **kwargs: Any) -> None:
        """Delete a document and its chunks (only ones the principal owns)."""
        self.delete_documents([ref_doc_id], principal=kwargs.get("principal"))

    def delete_documents(self, doc_ids: Sequence[str], principal: str | None = None) -> None:
        with self._db.session(principal) as conn:
            conn.execute("DELETE FROM chunks WHERE collection = %s AND doc_id = ANY(%s)", (self.collection, list(doc_ids)))
            conn.execute("DELETE FROM documents WHERE collection = %s AND doc_id = ANY(%s)", (self.collection, list(doc_ids)))

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any) -> None:
        where, params = self._where(filters, node_ids, None)
        with self._db.session(kwargs.get("principal")) as conn:
            conn.execute(sql.SQL("DELETE FROM chunks c WHERE c.collection = {} AND {}").format(
                sql.Literal(self.collection), where), params)

    def clear(self, **kwargs: Any) -> None:
        with self._db.session(kwargs.get("principal")) as conn:
            conn.execute("DELETE FROM chunks WHERE collection = %s", (self.collection,))
            conn.execute("DELETE FROM documents WHERE collection = %s", (self.collection,))

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any) -> list[BaseNode]:
        where, params = self._where(filters, node_ids, None)
        with self._db.session(kwargs.get("principal")) as conn:
            cur = conn.cursor(row_factory=_dict_row)
            rows = cur.execute(sql.SQL("SELECT {} FROM chunks c WHERE c.collection = {} AND {} ORDER BY c.node_id").format(
                queries.SELECT_COLS, sql.Literal(self.collection), where), params).fetchall()
        return [_node(r) for r in rows]

    # ---- reads ------------------------------------------------------------------------
    def _where(self, filters: MetadataFilters | None, node_ids: list[str] | None, as_of: Any) -> tuple[sql.Composable, dict]:
        tr = FilterTranslator("c")
        parts = [tr.translate(filters)]
        if node_ids:
            parts.append(sql.SQL("c.node_id = ANY({})").format(sql.Placeholder("node_ids")))
            tr.params["node_ids"] = list(node_ids)
        if as_of is not None:
            # "What was in force on D": started on or before D and not yet ended.
            parts.append(sql.SQL("(c.valid_from IS NULL OR c.valid_from <= {d}) AND (c.valid_to IS NULL OR c.valid_to > {d})").format(
                d=sql.Placeholder("as_of")))
            tr.params["as_of"] = as_date(as_of)
        return sql.SQL(" AND ").join(parts), tr.params

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """``principal=`` scopes the query (RLS); ``as_of=`` (date) keeps what was in force then."""
        mode = _MODES.get(query.mode, "vector") or self._retrieval.mode
        k = query.similarity_top_k or self._retrieval.top_k
        where, params = self._where(query.filters, query.node_ids, kwargs.get("as_of"))
        text = query.query_str or ""
        if mode in ("text", "hybrid") and not text.strip():
            if mode == "text":
                raise ValueError("text search needs query_str")
            mode = "vector"
        if mode in ("vector", "hybrid") and query.query_embedding is None:
            if mode == "vector":
                raise ValueError("vector search needs query_embedding")
            mode = "text"
        r = self._retrieval
        stmt = queries.build(
            mode, collection=self.collection, where=where, k=k, candidates=max(r.candidates, k),
            rrf_k=r.rrf_k, scan_cap=r.lexical_scan_cap, ts_config=self.text_search_config,
            has_vector=query.query_embedding is not None,
        )
        params.update(text=queries.lexical_text(text))
        if query.query_embedding is not None:
            params["q"] = np.asarray(query.query_embedding, dtype=np.float32)
        with self._db.read_session(kwargs.get("principal"), queries.search_gucs(self.ef_search)) as conn:
            rows = conn.cursor(row_factory=_dict_row).execute(stmt, params).fetchall()
        nodes = [_node(r) for r in rows]
        return VectorStoreQueryResult(nodes=nodes, similarities=[float(r["score"]) for r in rows], ids=[n.node_id for n in nodes])


def _dict_row(cursor):
    from psycopg.rows import dict_row

    return dict_row(cursor)

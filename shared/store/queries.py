"""The SQL of the three query modes. ``LIMIT``s and the collection are literals (a
prepared plan keeps partition pruning and a literal limit); everything a user supplies
is a named bind parameter: ``q`` (vector), ``text`` (query text) and the filter values."""
from __future__ import annotations

import re

from psycopg import sql

SELECT_COLS = sql.SQL("c.node_id, c.doc_id, c.owner, c.text, c.metadata, c.valid_from, c.valid_to")
# Cosine similarity to the query whatever the mode: fused (RRF) and lexical scores say
# nothing about absolute relevance, which the chat engine's grounding gate needs.
SIMILARITY = sql.SQL("1 - (c.embedding <=> %(q)s) AS similarity")
NO_SIMILARITY = sql.SQL("NULL::float8 AS similarity")


def search_gucs(ef_search: int) -> dict[str, str]:
    # strict_order: when RLS or filters drop rows, keep walking the HNSW graph until k
    # rows survive, instead of silently returning fewer (pgvector >= 0.8).
    return {"hnsw.ef_search": str(ef_search), "hnsw.iterative_scan": "strict_order"}


# Postgres evaluates a tsquery on a bounded stack, and websearch syntax reads each "-" as
# a negation: a pasted clause with a "--------" rule line or a long quote fails with
# "tsquery stack too small". Dash runs (and dashes that negate nothing) are dropped, and
# only the first words count (the embedding model reads 256 tokens of it as well).
MAX_QUERY_WORDS = 64
_LOOSE_DASHES = re.compile(r"-{2,}|-(?!\w)")


def lexical_text(text: str) -> str:
    return " ".join(_LOOSE_DASHES.sub(" ", text).split()[:MAX_QUERY_WORDS])


def _vector_ranked(coll: sql.Composable, where: sql.Composable, limit: int) -> sql.Composable:
    return sql.SQL(
        "SELECT c.node_id, row_number() OVER (ORDER BY d) AS r FROM ("
        " SELECT c.node_id, c.embedding <=> %(q)s AS d FROM chunks c"
        " WHERE c.collection = {coll} AND {where} ORDER BY c.embedding <=> %(q)s LIMIT {lim}) c"
    ).format(coll=coll, where=where, lim=sql.Literal(limit))


def _lexical_ranked(coll, where, limit: int, k: int, scan_cap: int, cfg: sql.Composable) -> sql.Composable:
    """AND semantics first (websearch syntax: phrases, -negation); only when that finds
    fewer than k passages, OR over the query's lexemes, ranking at most ``scan_cap``
    matches. Ranking every match of a broad OR query is what makes naive hybrid slow.
    ``score`` is in (1, 2) for matches of every term and in (0, 1) for partial matches."""
    return sql.SQL(
        "lex_and AS ("
        " SELECT c.node_id, ts_rank_cd(c.tsv, qa) AS rank"
        " FROM chunks c, websearch_to_tsquery({cfg}, %(text)s) qa"
        " WHERE c.collection = {coll} AND c.tsv @@ qa AND {where}"
        " ORDER BY rank DESC LIMIT {lim}),"
        # A scalar subquery becomes an InitPlan parameter, so the GIN index can serve it
        # (a tsquery joined in from FROM would be a per-row join filter instead).
        " or_query AS MATERIALIZED ("
        "  SELECT string_agg(quote_literal(l), ' | ')::tsquery AS qo"
        "  FROM unnest(tsvector_to_array(to_tsvector({cfg}, %(text)s))) l),"
        " lex_or AS ("
        " SELECT m.node_id, ts_rank_cd(m.tsv, (SELECT qo FROM or_query)) AS rank FROM ("
        "  SELECT c.node_id, c.tsv FROM chunks c"
        "  WHERE (SELECT count(*) FROM lex_and) < {k}"
        "   AND c.collection = {coll} AND c.tsv @@ (SELECT qo FROM or_query) AND {where} LIMIT {cap}) m"
        " ORDER BY rank DESC LIMIT {lim}),"
        " lex AS ("
        " SELECT node_id, row_number() OVER (ORDER BY tier, rank DESC) AS r,"
        "  (1 - tier) + rank / (1 + rank) AS score FROM ("
        "  SELECT node_id, rank, 0 AS tier FROM lex_and"
        "  UNION ALL SELECT node_id, rank, 1 FROM lex_or WHERE node_id NOT IN (SELECT node_id FROM lex_and)) u)"
    ).format(cfg=cfg, coll=coll, where=where, lim=sql.Literal(limit), k=sql.Literal(k), cap=sql.Literal(scan_cap))


def build(mode: str, *, collection: str, where: sql.Composable, k: int, candidates: int,
          rrf_k: int, scan_cap: int, ts_config: str, has_vector: bool = True) -> sql.Composable:
    coll, cfg = sql.Literal(collection), sql.Literal(ts_config)
    cols = sql.SQL(", ").join([SELECT_COLS, SIMILARITY if has_vector else NO_SIMILARITY])
    if mode == "vector":
        return sql.SQL(
            "SELECT {cols}, 1 - (c.embedding <=> %(q)s) AS score FROM chunks c"
            " WHERE c.collection = {coll} AND {where} ORDER BY c.embedding <=> %(q)s LIMIT {k}"
        ).format(cols=cols, coll=coll, where=where, k=sql.Literal(k))
    if mode == "text":
        return sql.SQL(
            "WITH {lex} SELECT {cols}, l.score FROM lex l"
            " JOIN chunks c ON c.collection = {coll} AND c.node_id = l.node_id ORDER BY l.r LIMIT {k}"
        ).format(lex=_lexical_ranked(coll, where, k, k, scan_cap, cfg), cols=cols, coll=coll, k=sql.Literal(k))
    if mode == "hybrid":
        return sql.SQL(
            "WITH vec AS ({vec}), {lex},"
            " fused AS (SELECT node_id, sum(1.0 / ({rrf} + r)) AS score FROM ("
            "  SELECT node_id, r FROM vec UNION ALL SELECT node_id, r FROM lex) u"
            "  GROUP BY node_id ORDER BY score DESC LIMIT {k})"
            " SELECT {cols}, f.score FROM fused f"
            " JOIN chunks c ON c.collection = {coll} AND c.node_id = f.node_id ORDER BY f.score DESC"
        ).format(
            vec=_vector_ranked(coll, where, candidates), lex=_lexical_ranked(coll, where, candidates, k, scan_cap, cfg),
            rrf=sql.Literal(rrf_k), k=sql.Literal(k), cols=cols, coll=coll,
        )
    raise ValueError(f"unknown query mode {mode!r} (vector, text, hybrid)")

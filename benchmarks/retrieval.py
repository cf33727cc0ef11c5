"""Retrieval benchmark: this suite's store vs the stock llama-index ``PGVectorStore``, in
one process, on the same Postgres, with the same precomputed embeddings.

  python benchmarks/retrieval.py [--chunks 20000] [--queries 200] [--pipeline-chunks 600]

Measures (ratios are this suite over the baseline, measured in the same run):
  * DB write rows/s, both with full-text search (stock: hybrid_search=True). Both load
    without an HNSW index and build it after the load (timed separately, same SQL);
  * end-to-end ingestion chunks/s (parse, chunk, embed, write) vs bare embedding of the
    same chunk texts with the same model and batch size;
  * top-5 latency p50/p95: vector vs stock vector (HNSW both, same ef_search), hybrid
    (one-statement rank fusion) vs the stock hybrid mode (two queries, no fusion);
  * recall@10 of the HNSW index vs exact search (numpy over the same vectors).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from common import DATA, cached_embeddings, need_data, pct, real_chunks, real_queries  # noqa: E402


def nodes_for(chunks, vecs):
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    return [
        TextNode(id_=f"n{i}", text=text, metadata={"title": title, "i": i}, embedding=v.tolist(),
                 relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc{i // 20}")})
        for i, ((title, text), v) in enumerate(zip(chunks, vecs))
    ]


def stock_store(db, table: str):
    from llama_index.vector_stores.postgres import PGVectorStore
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(db.admin_url)
    host, user, dbname = info.get("host", ""), info.get("user", "postgres"), info.get("dbname", "postgres")
    if host.startswith("/"):  # embedded server: unix socket (from_params cannot express it)
        sync_url = f"postgresql+psycopg://{user}@/{dbname}?host={host}"
        async_url = f"postgresql+asyncpg://{user}@/{dbname}?host={host}"
    else:
        auth = f"{user}:{info.get('password', '')}@{host}:{info.get('port', 5432)}"
        sync_url, async_url = f"postgresql+psycopg://{auth}/{dbname}", f"postgresql+asyncpg://{auth}/{dbname}"
    # Same ef_search as ours, set per connection (hnsw_kwargs would also build the index
    # before the load, which would make the write comparison unfair the other way).
    return PGVectorStore(connection_string=sync_url, async_connection_string=async_url, table_name=table,
                         embed_dim=384, hybrid_search=True, text_search_config="english",
                         initialization_fail_on_error=True, perform_setup=True,
                         create_engine_kwargs={"connect_args": {"options": f"-c hnsw.ef_search={db.settings.hnsw_ef_search}"}})


def timed_load(add, nodes, batch=2000) -> float:
    t = time.perf_counter()
    for i in range(0, len(nodes), batch):
        add(nodes[i:i + batch])
    return time.perf_counter() - t


def bench_writes(db, settings, nodes):
    from shared.store import PgVectorStore

    ours = PgVectorStore(db, "bench_ours", settings.retrieval)
    ours.clear()
    with ours.bulk_load():
        t_ours = timed_load(ours.add, nodes)
        t0 = time.perf_counter()
    t_ours_index = time.perf_counter() - t0

    with db._admin() as conn:
        conn.execute("DROP TABLE IF EXISTS data_bench_stock")
    stock = stock_store(db, "bench_stock")
    t_stock = timed_load(stock.add, nodes)
    t0 = time.perf_counter()
    with db._admin() as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(f"CREATE INDEX ON data_bench_stock USING hnsw (embedding vector_cosine_ops)"
                     f" WITH (m = {db.settings.hnsw_m}, ef_construction = {db.settings.hnsw_ef_construction})")
        conn.execute("ANALYZE data_bench_stock")
    t_stock_index = time.perf_counter() - t0
    with db._admin() as conn:
        conn.execute("ANALYZE chunks_bench_ours")
    n = len(nodes)
    print(f"write   ours  {n / t_ours:9.0f} rows/s  (+ HNSW build {t_ours_index:.1f}s)")
    print(f"write   stock {n / t_stock:9.0f} rows/s  (+ HNSW build {t_stock_index:.1f}s)")
    return ours, stock, (n / t_ours) / (n / t_stock)


def bench_pipeline(rt, n_chunks: int):
    """Parse + chunk + embed + write of real contracts vs bare embedding of the same texts."""
    from shared.store import PgVectorStore

    src = tempfile.mkdtemp(prefix="bench-pipe-")
    words = 0
    for path in sorted((DATA / "legal" / "cuad" / "contracts").glob("*.txt"))[200:]:
        shutil.copy(path, src)
        words += len(path.read_text(errors="replace").split())
        if words > n_chunks * 120:
            break
    store = PgVectorStore(rt.db, "bench_pipe", rt.settings.retrieval)
    store.clear()
    rt.__dict__["store"] = store
    ing = rt.ingestor()
    rt.embedding.embed(["warm-up"] * 64)  # first-call costs belong to neither side
    t = time.perf_counter()
    summary = ing.run([Path(src)], progress=False)
    t_pipe = time.perf_counter() - t
    texts = [ing.embed_text(n) for n in store.get_nodes()]
    bare = []
    for _ in range(2):  # twice, and the mean: the machine is shared and noisy
        t = time.perf_counter()
        rt.embedding.embed(texts)
        bare.append(time.perf_counter() - t)
    shutil.rmtree(src)
    pipe_rate, bare_rate = summary.chunks / t_pipe, len(texts) / float(np.mean(bare))
    print(f"ingest  pipeline {pipe_rate:7.1f} chunks/s  bare embedding {bare_rate:7.1f} chunks/s  ({summary.chunks} chunks)")
    rt.db.drop_collection("bench_pipe")
    return pipe_rate / bare_rate


def bench_queries(ours, stock, queries, qvecs, k=5, warmup=20):
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode as M

    runs = {
        "ours vector": lambda q, v: ours.query(VectorStoreQuery(query_embedding=v, similarity_top_k=k, mode=M.DEFAULT)),
        "stock vector": lambda q, v: stock.query(VectorStoreQuery(query_embedding=v, similarity_top_k=k, mode=M.DEFAULT)),
        "ours hybrid": lambda q, v: ours.query(VectorStoreQuery(query_str=q, query_embedding=v, similarity_top_k=k, mode=M.HYBRID)),
        "stock hybrid": lambda q, v: stock.query(VectorStoreQuery(query_str=q, query_embedding=v, similarity_top_k=k,
                                                                 sparse_top_k=k, mode=M.HYBRID)),
        "ours text": lambda q, v: ours.query(VectorStoreQuery(query_str=q, similarity_top_k=k, mode=M.TEXT_SEARCH)),
    }
    times = {name: [] for name in runs}
    for i, (q, v) in enumerate(zip(queries, qvecs)):
        for name, fn in runs.items():  # interleaved, so load spikes hit every contender alike
            t = time.perf_counter()
            fn(q, v.tolist())
            if i >= warmup:
                times[name].append((time.perf_counter() - t) * 1000)
    for name, ts in times.items():
        print(f"query   {name:13s} p50 {pct(ts, 50):7.2f} ms  p95 {pct(ts, 95):7.2f} ms")
    return (pct(times["stock vector"], 50) / pct(times["ours vector"], 50),
            pct(times["stock hybrid"], 50) / pct(times["ours hybrid"], 50))


def bench_recall(ours, vecs, qvecs, k=10):
    from llama_index.core.vector_stores.types import VectorStoreQuery

    exact = np.argsort(-(qvecs @ vecs.T), axis=1)[:, :k]
    hits = 0
    for q, truth in zip(qvecs, exact):
        got = ours.query(VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=k)).ids
        hits += len({f"n{i}" for i in truth} & set(got))
    return hits / (k * len(qvecs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pipeline-chunks", type=int, default=600)
    args = ap.parse_args()
    need_data()
    from assistants.domains import settings_for
    from shared.runtime import Runtime

    rt = Runtime(settings_for("finance"))
    chunks = real_chunks(args.chunks)
    queries = real_queries(args.queries)
    vecs = cached_embeddings(rt.embedding, [f"{t}\n{c}" for t, c in chunks], "chunks")
    qvecs = cached_embeddings(rt.embedding, queries, "queries")
    print(f"{len(chunks)} chunks, {len(queries)} queries, Postgres {'embedded' if rt.db.embedded else 'external'}, "
          f"ef_search {rt.db.settings.hnsw_ef_search}")

    ours, stock, ingest_speedup = bench_writes(rt.db, rt.settings, nodes_for(chunks, vecs))
    query_speedup, hybrid_speedup = bench_queries(ours, stock, queries, qvecs)
    recall = bench_recall(ours, vecs, qvecs)
    print(f"recall@10 (HNSW vs exact) {recall:.3f}")
    pipeline_over_embed = bench_pipeline(rt, args.pipeline_chunks)
    rt.db.drop_collection("bench_ours")
    with rt.db._admin() as conn:
        conn.execute("DROP TABLE IF EXISTS data_bench_stock")
    rt.close()
    print(f"RESULT ingest_speedup={ingest_speedup:.2f} pipeline_over_embed={pipeline_over_embed:.2f} "
          f"query_p50_speedup={query_speedup:.2f} hybrid_p50_speedup={hybrid_speedup:.2f} recall_at_10={recall:.3f}")


if __name__ == "__main__":
    main()

"""Financial advisor (RAG): answers from a curated, dated Postgres/pgvector corpus."""

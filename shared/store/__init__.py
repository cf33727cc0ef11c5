"""llama-index vector store on psycopg 3 + pgvector (vector, text and hybrid modes, RLS)."""
from .pgvector_store import DocumentRecord, PgVectorStore

__all__ = ["DocumentRecord", "PgVectorStore"]

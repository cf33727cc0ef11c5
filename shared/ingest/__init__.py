"""Ingestion: loaders per file type, token-aware chunking, batched embedding, incremental
and idempotent writes into the vector store."""
from .loaders import LoadError, SourceDoc, load_file
from .pipeline import IngestSummary, Ingestor

__all__ = ["IngestSummary", "Ingestor", "LoadError", "SourceDoc", "load_file"]

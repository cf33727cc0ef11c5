"""The composition root of one domain: its parts, built lazily from its settings and
each built once, handed to the services that need them (one explicit factory instead of
a dependency-injection container). No service imports or calls back into it: the chat
engine and the clause analysis get the callables and objects they use, the UI gets the
database, the store and the document service from whoever builds the app."""
from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from .db import Database
from .settings import Settings


# One promoted-adapter follower per domain and generation config.
_FOLLOWERS: dict[str, object] = {}


class Runtime:
    def __init__(self, settings: Settings, db: Database | None = None):
        self.settings = settings
        self._shared_db = db

    @cached_property
    def db(self) -> Database:
        s = self.settings
        if self._shared_db is not None:
            db = self._shared_db.open()
        else:
            db = Database.for_settings(s).open()
        if s.domain.migrations:
            # Versioned under the domain's folder, which ships them: a settings copy under
            # another domain name (benchmarks, tests) shares the same tables.
            db.migrate_domain(s.domain.root.name, s.domain.root / s.domain.migrations)
        return db

    @cached_property
    def embedding(self):
        from .embedding import SentenceEmbedding

        return SentenceEmbedding(self.settings.embedding)

    @cached_property
    def store(self):
        from .store import PgVectorStore

        return PgVectorStore(self.db, self.settings.domain.name, self.settings.retrieval)

    @property
    def generator(self):
        """The model serving this domain now. With ``generation.adapter: promoted`` that is
        the registry's promoted adapter, re-read each call so a promotion takes effect at
        the next turn without a restart; a RAG-only domain always gets the base model."""
        from .finetune.serving import PROMOTED, PromotedAdapter
        from .generation import shared_generator

        s = self.settings
        if s.domain.approach == "rag":
            # RAG-only serves the base model: the same domain config switches approach alone.
            return shared_generator(s.generation.model_copy(update={"adapter": None}), s.state_dir)
        if s.generation.adapter == PROMOTED:
            key = f"{Path(s.state_dir).resolve()}|{s.domain.name}|{s.generation.model_dump_json()}"
            if key not in _FOLLOWERS:
                _FOLLOWERS[key] = PromotedAdapter(s)
            return _FOLLOWERS[key].current()
        return shared_generator(s.generation, s.state_dir)

    def generator_provider(self, pinned=None):
        """What a service asks for its model, once per turn or analysis: ``pinned`` (tests,
        benchmarks), or else the model serving now, so a promotion lands at the next call."""
        return (lambda: pinned) if pinned is not None else (lambda: self.generator)

    def embed(self, texts):
        return self.embedding.embed(texts)

    def chat_engine(self, generator=None, recorder=None):
        """The domain's chat engine; ``generator`` pins one model (tests, benchmarks), unset
        each turn takes the model serving now."""
        from .chat import ChatEngine, Recorder

        s = self.settings
        return ChatEngine(s, recorder=recorder or Recorder(self.db, s.domain.name),
                          generator=self.generator_provider(generator), retriever=self.retriever,
                          embed=self.embed, tools=self.toolbox())

    def toolbox(self):
        """The domain's tools (None without a provider), each engine its own. A provider is
        handed the parts its tools may use (``ToolParts``), not this root."""
        from .plugins import TOOL_PROVIDER, lookup
        from .tools import ToolBox, ToolParts

        provider = self.settings.tools.provider
        if not provider:
            return None
        parts = ToolParts(settings=self.settings, db=self.db, retriever=self.retriever)
        return ToolBox(self.settings, dict(lookup(TOOL_PROVIDER, provider)(parts)))

    def clause_analyzer(self, checklist, generator=None, **options):
        """The clause analysis of ``checklist``; ``generator`` pins one model, unset each
        analysis takes the model serving now. ``options``: see ``ClauseAnalyzer``."""
        from .analysis.analyzer import ClauseAnalyzer

        return ClauseAnalyzer(self.settings, checklist, generator=self.generator_provider(generator),
                              retriever=self.retriever, embed=self.embed, **options)

    def document_service(self, checklist=None):
        """Upload, ingestion and clause report for the UI and the CLI; None for a domain
        without a checklist (no document analysis)."""
        from .analysis import Checklist
        from .analysis.service import DocumentService

        checklist = checklist or Checklist.for_settings(self.settings)
        if checklist is None:
            return None
        return DocumentService(self.settings, checklist, documents=self, analyzer=self.clause_analyzer(checklist))

    @cached_property
    def index(self):
        """The llama-index view of the store, built once: a retriever is cheap, the index
        is not worth rebuilding per query."""
        from llama_index.core import VectorStoreIndex

        return VectorStoreIndex.from_vector_store(self.store, embed_model=self.embedding)

    def ingestor(self, principal: str | None = None):
        from .ingest import Ingestor

        s = self.settings
        return Ingestor(self.store, self.embedding, s.chunking, s.ingest, principal=principal)

    def retriever(self, principal: str | None = None, as_of: date | None = None, mode: str | None = None,
                  top_k: int | None = None, filters: Any = None):
        """A stock llama-index retriever over this domain's store, scoped to a principal (the
        retriever factory the chat engine, the analysis and tools are handed)."""
        from llama_index.core.vector_stores.types import VectorStoreQueryMode

        modes = {"vector": VectorStoreQueryMode.DEFAULT, "text": VectorStoreQueryMode.TEXT_SEARCH,
                 "hybrid": VectorStoreQueryMode.HYBRID}
        r = self.settings.retrieval
        return self.index.as_retriever(
            similarity_top_k=top_k or r.top_k,
            vector_store_query_mode=modes[mode or r.mode],
            filters=filters,
            vector_store_kwargs={"principal": principal, "as_of": as_of},
        )

    def close(self) -> None:
        if "db" in self.__dict__ and self._shared_db is None:
            self.db.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Incremental, idempotent ingestion into one collection.

Each document is committed on its own (chunks and its ``documents`` row in one
transaction) and skipped next time while its content hash is unchanged, so a run that is
killed midway is finished by simply running it again: no duplicates, nothing lost."""
from __future__ import annotations

import bisect
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from tqdm import tqdm

from ..embedding import SentenceEmbedding
from ..settings import ChunkingSettings, IngestSettings
from ..store import DocumentRecord, PgVectorStore
from ..store.pgvector_store import as_date
from .loaders import LOADERS, LoadError, SourceDoc, load_file


@dataclass
class IngestSummary:
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    pruned: int = 0
    chunks: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"documents: {self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
                f"{len(self.failed)} failed, {self.pruned} pruned; {self.chunks} chunks written")


@dataclass
class _Pending:
    record: DocumentRecord
    chunks: list[TextNode]
    is_new: bool


def discover(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """(file, document id base) for every supported file; ids are relative to the given
    root (``samples/regs/a.md``) so they are stable across machines and checkouts."""
    found: dict[Path, str] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts) and f.suffix.lower() in LOADERS:
                    found.setdefault(f.resolve(), f"{p.resolve().name}/{rel.as_posix()}")
        elif p.is_file():
            found.setdefault(p.resolve(), p.name)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return [(f, base) for f, base in found.items()]


class Ingestor:
    def __init__(self, store: PgVectorStore, embedding: SentenceEmbedding, chunking: ChunkingSettings,
                 ingest: IngestSettings, principal: str | None = None):
        self.store, self.embedding, self.principal = store, embedding, principal
        # A principal's documents live in their own id space, so an upload named like a
        # public document can never collide with (or shadow) it.
        self._id_prefix = f"@{principal}/" if principal else ""
        self.ingest = ingest
        self.splitter = SentenceSplitter(
            chunk_size=min(chunking.chunk_size, embedding.max_tokens),
            chunk_overlap=chunking.chunk_overlap,
            tokenizer=embedding.token_counter(),
        )
        # Changing how text is cut or embedded changes every document's hash, so the next
        # run re-indexes instead of mixing incompatible chunks.
        self._recipe = json.dumps([chunking.model_dump(), embedding.model_name], sort_keys=True)

    # ---- one document -----------------------------------------------------------------
    def _hash(self, doc: SourceDoc) -> str:
        h = hashlib.sha256(self._recipe.encode())
        h.update(json.dumps([doc.title, doc.metadata, doc.text], sort_keys=True, default=str).encode())
        return h.hexdigest()

    def chunk(self, doc_id: str, doc: SourceDoc, source: str) -> list[TextNode]:
        starts = [s for _, s in doc.pages]
        nodes, cursor = [], 0
        for i, piece in enumerate(self.splitter.split_text(doc.text)):
            start = doc.text.find(piece, cursor)
            if start < 0:  # the splitter normalised whitespace; fall back to the cursor
                start = cursor
            end = start + len(piece)
            cursor = start + 1
            meta = {"doc_id": doc_id, "title": doc.title, "source": source, "chunk": i, **doc.metadata}
            if starts:
                meta["page"] = doc.pages[max(0, bisect.bisect_right(starts, start) - 1)][0]
            node = TextNode(
                id_=hashlib.sha1(f"{doc_id}\x00{i}".encode()).hexdigest()[:24],
                text=piece, metadata=meta, start_char_idx=start, end_char_idx=end,
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
            )
            nodes.append(node)
        return nodes

    def embed_text(self, node: TextNode) -> str:
        """What is embedded: the title gives a short chunk its context."""
        return f"{node.metadata.get('title', '')}\n{node.text}"

    def doc_id(self, base: str, key: str = "") -> str:
        return self._id_prefix + (base if not key else f"{base}#{key}")

    def _prepare(self, doc: SourceDoc, base: str, source: str, known: dict) -> _Pending | None:
        """The record and chunks to write, or None when the stored version is identical."""
        doc_id = self.doc_id(base, doc.key)
        digest = self._hash(doc)
        if known.get(doc_id, (None,))[0] == digest:
            return None
        try:
            valid_from, valid_to = as_date(doc.metadata.get("valid_from")), as_date(doc.metadata.get("valid_to"))
        except ValueError as e:
            raise LoadError(f"bad valid_from/valid_to date: {e}") from None
        record = DocumentRecord(doc_id, digest, source, doc.title, doc.metadata, valid_from, valid_to)
        return _Pending(record, self.chunk(doc_id, doc, base), doc_id not in known)

    def ingest_document(self, doc: SourceDoc, base: str, source: str) -> str:
        """Ingest one already-loaded document (an upload) and return its id. Unchanged
        content writes nothing; otherwise it is embedded and written in one transaction, so
        a failure leaves the previous version (or nothing) behind. Raises ``LoadError``."""
        p = self._prepare(doc, base, source, self.store.document_hashes(self.principal))
        if p is not None:
            self._write([p], IngestSummary(), progress=False)
        return self.doc_id(base, doc.key)

    # ---- a run ------------------------------------------------------------------------
    def run(self, paths: Iterable[Path], prune: bool = False, progress: bool = True) -> IngestSummary:
        summary = IngestSummary()
        paths = [Path(p) for p in paths]
        files = discover(paths)
        known = self.store.document_hashes(self.principal)
        seen: set[str] = set()
        loaded_sources: set[str] = set()
        pending: list[_Pending] = []
        max_bytes = int(self.ingest.max_file_mb * 1e6)
        for path, base in tqdm(files, desc="parse", unit="file", disable=not progress, file=sys.stderr):
            try:
                docs = load_file(path, max_bytes)
            except (LoadError, OSError) as e:
                summary.failed.append((str(path), str(e)))
                continue
            loaded_sources.add(str(path))
            for doc in docs:
                doc_id = self.doc_id(base, doc.key)
                if doc_id in seen:
                    continue
                seen.add(doc_id)
                try:
                    p = self._prepare(doc, base, str(path), known)
                except LoadError as e:
                    summary.failed.append((f"{path} ({doc_id})", str(e)))
                    continue
                if p is None:
                    summary.unchanged += 1
                else:
                    pending.append(p)
        self._write(pending, summary, progress)
        if prune:
            summary.pruned = self._prune([p.resolve() for p in paths], known, seen, loaded_sources)
        return summary

    def _write(self, pending: list[_Pending], summary: IngestSummary, progress: bool) -> None:
        total = sum(len(p.chunks) for p in pending)
        # Only the system context may take the shared index offline; a user's upload never does.
        if self.principal is None and total >= self.ingest.bulk_min_chunks and total >= self.store.count():
            with self.store.bulk_load():
                self._write_batches(pending, summary, progress, total)
        else:
            self._write_batches(pending, summary, progress, total)

    def _write_batches(self, pending: list[_Pending], summary: IngestSummary, progress: bool, total: int) -> None:
        bar = tqdm(total=total, desc="embed+write", unit="chunk", disable=not progress or not total, file=sys.stderr)
        batch: list[_Pending] = []
        for i, p in enumerate(pending):
            batch.append(p)
            if sum(len(b.chunks) for b in batch) >= self.ingest.write_batch_chunks or i == len(pending) - 1:
                nodes = [n for b in batch for n in b.chunks]
                if nodes:
                    vectors = self.embedding.embed([self.embed_text(n) for n in nodes])
                    for n, v in zip(nodes, vectors):
                        n.embedding = v.tolist()
                for b in batch:
                    self.store.write_document(b.record, b.chunks, self.principal)
                    summary.new += b.is_new
                    summary.changed += not b.is_new
                    summary.chunks += len(b.chunks)
                    bar.update(len(b.chunks))
                batch = []
        bar.close()

    def _prune(self, roots: list[Path], known: dict, seen: set[str], loaded_sources: set[str]) -> int:
        """Within the given roots, drop documents whose file is gone (or whose record left a
        file that loaded). Documents of files that merely failed to parse are kept."""
        def under_roots(source: str) -> bool:
            return any(source == str(r) or source.startswith(str(r) + "/") for r in roots)

        gone = [
            doc_id for doc_id, (_, source) in known.items()
            if doc_id not in seen and source and under_roots(source)
            and (not Path(source).exists() or source in loaded_sources)
        ]
        if gone:
            self.store.delete_documents(gone, self.principal)
        return len(gone)

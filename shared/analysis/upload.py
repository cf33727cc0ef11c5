"""A user's upload: checked before anything is stored (type, size, readable, has text, is
the expected kind of document), then ingested privately for that user.

Every refusal is an ``UploadError`` whose message says what was wrong and what to do."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..ingest.loaders import EmptyDocument, LoadError, SourceDoc, load_file
from ..settings import Settings
from .checklist import Checklist

# Uploads get their own id space under the principal's prefix, keyed by file name, so
# re-uploading a file replaces (or, unchanged, keeps) the earlier upload.
UPLOAD_DIR = "uploads"


class Documents(Protocol):
    """What storing an upload needs: an ingestor writing as a principal, and the store.
    The deployment's runtime is one; the analysis does not depend on it."""

    store: Any

    def ingestor(self, principal: str | None = None) -> Any: ...


class UploadError(ValueError):
    """An upload that cannot be analysed; the message is shown to the user as is."""


def accept_upload(settings: Settings, checklist: Checklist, path: Path) -> SourceDoc:
    """The uploaded document, or ``UploadError``. The size is checked before the file is
    read, so an oversized upload costs nothing."""
    path = Path(path)
    name, suffix = path.name, path.suffix.lower()
    allowed = settings.analysis.upload_types
    if suffix not in allowed:
        raise UploadError(f"{name}: {suffix or 'files without an extension'} cannot be uploaded; "
                          f"upload one of {', '.join(allowed)}.")
    size, limit_mb = path.stat().st_size, settings.analysis.max_upload_mb
    if size > limit_mb * 1e6:
        raise UploadError(f"{name} is {size / 1e6:.1f} MB, over the {limit_mb:g} MB upload limit; "
                          "upload a smaller file or only the part to analyse.")
    try:
        docs = load_file(path)
    except EmptyDocument:
        raise UploadError(f"{name} contains no text. A scanned document has only images of text: "
                          "run it through OCR (or export it with a text layer) and upload that.") from None
    except LoadError as e:
        raise UploadError(f"{name} could not be read: {str(e).removeprefix(name + ': ')}. Check that it opens, or save it again "
                          "(without a password) and re-upload.") from None
    if len(docs) != 1:
        raise UploadError(f"{name} holds {len(docs)} records; upload a single document.")
    kind = checklist.document_kind
    if checklist.accept.missing(docs[0].text) > 0:
        raise UploadError(f"{name}: this does not look like a {kind}: it has too few of the terms a {kind} "
                          f"uses ({', '.join(checklist.accept.terms[:5])}, ...). Upload the {kind} itself.")
    return docs[0]


def _private(principal: str | None) -> str:
    # Without a principal the write would land in the shared, public index.
    if not principal:
        raise ValueError("uploads are private: a principal is required")
    return principal


def ingest_upload(documents: Documents, principal: str, path: Path, doc: SourceDoc) -> str:
    """Store an accepted upload for ``principal`` only; returns its (private) doc id."""
    base = f"{UPLOAD_DIR}/{Path(path).name}"
    try:
        return documents.ingestor(_private(principal)).ingest_document(doc, base, base)
    except LoadError as e:
        raise UploadError(f"{Path(path).name} could not be stored: {e}") from None


def delete_upload(documents: Documents, principal: str, doc_id: str) -> None:
    """Remove an upload and its chunks; row-level security limits it to the owner's rows."""
    documents.store.delete_documents([doc_id], _private(principal))

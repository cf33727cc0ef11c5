"""File loaders: .txt .md .html .pdf .docx .csv .json .jsonl -> ``SourceDoc``s.

A loader either returns clean text with metadata or raises ``LoadError`` with a reason a
person can act on; it never returns half a document."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

TEXT_FIELDS = ("text", "content", "body", "answer", "document")
TITLE_FIELDS = ("title", "name", "question", "subject")


class LoadError(ValueError):
    """The file cannot be turned into text; the message says why."""


class EmptyDocument(LoadError):
    """The file was read but holds no text (e.g. a scanned PDF without a text layer)."""


@dataclass
class SourceDoc:
    """One document from a file. ``key`` is '' for a whole file or a record id inside it;
    ``pages`` lists (page number, start char) so a chunk's page follows from its offset."""

    key: str
    text: str
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: list[tuple[int, int]] = field(default_factory=list)


def decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError(f"{name}: looks like a binary file, not text")
    for enc in ("utf-8-sig", "utf-16") if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) else ("utf-8",):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    # Legacy 8-bit text (Windows-1252 is a superset of Latin-1's printable range).
    return data.decode("cp1252", errors="replace")


def _front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter (``---`` block) carries metadata such as valid_from/valid_to."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as e:
        raise LoadError(f"front matter is not valid YAML: {e}") from None
    if not isinstance(meta, dict):
        return {}, text
    body = text[end + 4:].lstrip("\n")
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in meta.items()}, body


def _first_heading(text: str) -> str | None:
    for line in text.splitlines()[:20]:
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return None


def load_text(path: Path, data: bytes) -> list[SourceDoc]:
    text = decode(data, path.name)
    meta, body = _front_matter(text)
    title = str(meta.pop("title", None) or _first_heading(body) or path.stem)
    return [SourceDoc("", body, title, meta)]


def load_html(path: Path, data: bytes) -> list[SourceDoc]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode(data, path.name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else None
    lines = (ln.strip() for ln in soup.get_text("\n").splitlines())
    return [SourceDoc("", "\n".join(ln for ln in lines if ln), title or path.stem)]


def load_pdf(path: Path, data: bytes) -> list[SourceDoc]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(f"{path.name}: the PDF is encrypted (password protected)")
        parts, pages, pos = [], [], 0
        for i, page in enumerate(reader.pages, start=1):
            t = (page.extract_text() or "").strip()
            pages.append((i, pos))
            parts.append(t)
            pos += len(t) + 2
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as e:
        raise LoadError(f"{path.name}: not a readable PDF ({type(e).__name__}: {e})") from None
    meta_title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    return [SourceDoc("", "\n\n".join(parts), str(meta_title or path.stem), {"n_pages": len(pages)}, pages)]


# An encrypted Office file is not a zip but an OLE compound file (the password wraps the
# whole package), and so is a legacy Word 97-2003 .doc renamed to .docx.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _docx_blocks(document) -> list[str]:
    """Paragraphs and tables in reading order; a table row becomes one line of its cells
    (a merged cell repeats in python-docx, so consecutive repeats are dropped)."""
    from docx.table import Table

    blocks = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [c.text.strip() for c in row.cells]
                cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                if cells:
                    blocks.append(" | ".join(cells))
        elif item.text.strip():
            blocks.append(item.text.strip())
    return blocks


def _docx_heading(document) -> str | None:
    for p in document.paragraphs[:20]:
        style = p.style.name if p.style is not None else ""
        if p.text.strip() and style.startswith(("Heading", "Title")):
            return p.text.strip()
    return None


def load_docx(path: Path, data: bytes) -> list[SourceDoc]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data.startswith(OLE_SIGNATURE):
        raise LoadError(f"{path.name}: the document is encrypted (password protected) or a legacy .doc; "
                        "remove the password or save it as .docx")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as e:  # ValueError: another Office type
        raise LoadError(f"{path.name}: not a readable Word document (corrupt or not a .docx: {e})") from None
    title = (document.core_properties.title or "").strip() or _docx_heading(document) or path.stem
    return [SourceDoc("", "\n\n".join(_docx_blocks(document)), title)]


def load_csv(path: Path, data: bytes) -> list[SourceDoc]:
    """One document per file; each row becomes one line ``col: value; ...`` so a row is
    never split from its header."""
    text = decode(data, path.name)
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as e:
        raise LoadError(f"{path.name}: not valid CSV ({e})") from None
    lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v not in (None, "")) for row in rows]
    return [SourceDoc("", "\n".join(ln for ln in lines if ln), path.stem, {"n_rows": len(rows)})]


def _record_doc(rec: Any, index: int, default_title: str) -> SourceDoc:
    if not isinstance(rec, dict):
        return SourceDoc(str(index), json.dumps(rec, ensure_ascii=False), f"{default_title} #{index}")
    key = str(rec.get("id", index))
    body = next((rec[f] for f in TEXT_FIELDS if isinstance(rec.get(f), str) and rec[f].strip()), None)
    title = next((str(rec[f]) for f in TITLE_FIELDS if rec.get(f)), f"{default_title} #{key}")
    scalars = {k: v for k, v in rec.items() if isinstance(v, (str, int, float, bool)) and k not in TEXT_FIELDS and k != "id"}
    if body is None:
        body = "\n".join(f"{k}: {v}" for k, v in rec.items() if k != "id")
    if title != f"{default_title} #{key}" and title not in body:
        body = f"{title}\n\n{body}"
    meta = {k: v for k, v in scalars.items() if len(str(v)) <= 200 and k not in TITLE_FIELDS}
    return SourceDoc(key, body, title, meta)


def load_jsonl(path: Path, data: bytes) -> list[SourceDoc]:
    docs = []
    for n, line in enumerate(decode(data, path.name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise LoadError(f"{path.name}: line {n} is not valid JSON ({e.msg})") from None
        docs.append(_record_doc(rec, n, path.stem))
    return docs


def load_json(path: Path, data: bytes) -> list[SourceDoc]:
    try:
        obj = json.loads(decode(data, path.name))
    except (json.JSONDecodeError, RecursionError) as e:
        raise LoadError(f"{path.name}: not valid JSON ({e})") from None
    if isinstance(obj, list):
        return [_record_doc(rec, i, path.stem) for i, rec in enumerate(obj, start=1)]
    doc = _record_doc(obj, 1, path.stem)
    return [SourceDoc("", doc.text, doc.title if "title" in obj else path.stem, doc.metadata)]


LOADERS: dict[str, Callable[[Path, bytes], list[SourceDoc]]] = {
    ".txt": load_text, ".md": load_text, ".markdown": load_text,
    ".html": load_html, ".htm": load_html, ".pdf": load_pdf, ".docx": load_docx, ".csv": load_csv,
    ".json": load_json, ".jsonl": load_jsonl,
}


def load_file(path: Path, max_bytes: int | None = None) -> list[SourceDoc]:
    """Load one file; raise ``LoadError`` (never anything else) when it cannot be used."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"{path.name}: unsupported file type {path.suffix or '(none)'} (supported: {', '.join(sorted(LOADERS))})")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise LoadError(f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    try:
        docs = loader(path, path.read_bytes())
    except LoadError:
        raise
    except RecursionError:
        raise LoadError(f"{path.name}: nested too deeply to parse") from None
    except Exception as e:  # a parser bug must not abort a whole ingestion run
        raise LoadError(f"{path.name}: could not be parsed ({type(e).__name__}: {e})") from None
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise EmptyDocument(f"{path.name}: contains no text")
    return docs

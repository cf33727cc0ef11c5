"""File loaders: .txt .md .html .pdf .docx .csv .json .jsonl -> ``SourceDoc``s.

A loader either returns clean text with metadata or raises ``LoadError`` with a reason a
person can act on; it never returns half a document."""
from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from ..text import clean_text
from .decoding import OLE_SIGNATURE, decode
from .errors import EmptyDocument, LoadError

TEXT_FIELDS = ("text", "content", "body", "answer", "document")
TITLE_FIELDS = ("title", "name", "question", "subject")


@dataclass
class SourceDoc:
    """One document from a file. ``key`` is '' for a whole file or a record id inside it;
    ``pages`` lists (page number, start char) so a chunk's page follows from its offset."""

    key: str
    text: str
    title: str
    metadata: dict[str, Any] = field(default_factory=dict)
    pages: list[tuple[int, int]] = field(default_factory=list)


# ---- front matter -------------------------------------------------------------------------
# Front matter is a few lines of metadata; a "---" block longer than this is not front
# matter (and YAML parsing is slow enough that a huge block would stall a run).
FRONT_MATTER_MAX_CHARS = 64_000


class _FrontMatterLoader(yaml.SafeLoader):
    """Safe tags only (no ``!!python/...`` object construction), and no aliases: a few
    lines of nested aliases ("billion laughs") expand to billions of values once the
    metadata is serialised."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in front matter",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _isoformat(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _front_matter(text: str, name: str) -> tuple[dict, str]:
    """YAML front matter (``---`` block) carries metadata such as valid_from/valid_to.
    Metadata is stored as JSON, so dates become ISO strings and every key a string."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4, FRONT_MATTER_MAX_CHARS)
    if end < 0:
        return {}, text
    try:
        meta = yaml.load(text[4:end], Loader=_FrontMatterLoader) or {}
        if not isinstance(meta, dict):
            return {}, text
        meta = json.loads(json.dumps(meta, default=_isoformat, skipkeys=True, allow_nan=False))
    # ValueError: a bad date or an over-long integer in the YAML, or NaN in the JSON.
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise LoadError(f"{name}: the front matter is not valid YAML ({' '.join(str(e).split())})") from None
    return meta, text[end + 4:].lstrip("\n")


def _first_heading(text: str) -> str | None:
    for line in text.splitlines()[:20]:
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return None


def load_text(path: Path, data: bytes) -> list[SourceDoc]:
    text = decode(data, path.name)
    meta, body = _front_matter(text, path.name)
    title = str(meta.pop("title", None) or _first_heading(body) or path.stem)
    return [SourceDoc("", body, title, meta)]


# ---- HTML -------------------------------------------------------------------------------
_HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template"})


class _HtmlText:
    """lxml parser target that keeps the visible text as the parser streams by. No tree is
    built, so a page nested 100,000 elements deep costs no more than a flat one."""

    def __init__(self):
        self.parts: list[str] = []
        self.title: list[str] | None = None
        self._hidden = 0  # depth inside script/style/...: they nest (<template> in <template>)
        self._in_title = False

    def start(self, tag, attrib):
        self._hidden += tag in _HIDDEN_TAGS
        if tag == "title" and self.title is None:
            self.title, self._in_title = [], True
        self.parts.append("\n")  # every element boundary may be a line break

    def end(self, tag):
        self._hidden -= tag in _HIDDEN_TAGS
        self._in_title = self._in_title and tag != "title"
        self.parts.append("\n")

    def data(self, text):
        if self._in_title:
            self.title.append(text)
        if not self._hidden:
            self.parts.append(text)

    def close(self) -> str:
        lines = (ln.strip() for ln in "".join(self.parts).splitlines())
        return "\n".join(ln for ln in lines if ln)


def load_html(path: Path, data: bytes) -> list[SourceDoc]:
    from lxml import etree

    target = _HtmlText()
    # lxml (libxml2) rather than html.parser: it is linear where Python 3.11's html.parser
    # is quadratic on runs like "<a<a<a..." (minutes for a few hundred KB). huge_tree lifts
    # libxml2's 10 MB text-node limit, which would otherwise drop text silently; with no
    # tree built there is nothing for the limit to protect.
    parser = etree.HTMLParser(target=target, encoding="utf-8", huge_tree=True)
    try:
        text = etree.fromstring(decode(data, path.name).encode("utf-8"), parser)
    except etree.LxmlError as e:
        raise LoadError(f"{path.name}: not readable HTML ({e})") from None
    return [SourceDoc("", text, "".join(target.title or ()).strip() or path.stem)]


# ---- PDF and Word: third-party parsers ----------------------------------------------------
@contextmanager
def _parser_boundary(name: str, kind: str) -> Iterator[None]:
    """Around a third-party parser (pypdf, python-docx) given a damaged file: they fail
    wherever their parsing breaks, with PdfReadError or PackageNotFoundError but also
    KeyError, IndexError, AttributeError (an unexpected root element), struct.error,
    zlib.error, lxml's XMLSyntaxError, RecursionError... Here every one of them means the
    same thing, that the file is not a readable ``kind``, and must not abort a run."""
    try:
        yield
    except LoadError:
        raise
    except Exception as e:
        raise LoadError(f"{name}: not a readable {kind} ({type(e).__name__}: {e})") from None


# ---- PDF --------------------------------------------------------------------------------
def _pdf_pages(path: Path, data: bytes) -> tuple[list[str], str | None]:
    """Each page's cleaned text, and the document's title (or None)."""
    from pypdf import PdfReader

    # pypdf searches a non-PDF file for a header and fails with a stream error; saying what
    # the file starts with is more use (an HTML page saved as .pdf, say).
    if b"%PDF-" not in data[:1024]:
        raise LoadError(f"{path.name}: not a PDF (a PDF starts with %PDF-, this file with {data[:20]!r})")
    with _parser_boundary(path.name, "PDF"):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoadError(f"{path.name}: the PDF is encrypted (password protected)")
        pages = [clean_text(page.extract_text() or "").strip() for page in reader.pages]
        return pages, reader.metadata.title if reader.metadata else None


def load_pdf(path: Path, data: bytes) -> list[SourceDoc]:
    parts, title = _pdf_pages(path, data)
    pages, pos = [], 0
    for i, text in enumerate(parts, start=1):
        pages.append((i, pos))
        pos += len(text) + 2
    return [SourceDoc("", "\n\n".join(parts), clean_text(title or "").strip() or path.stem,
                      {"n_pages": len(pages)}, pages)]


# ---- Word -------------------------------------------------------------------------------
# The text of a Word file is a few MB even unpacked, images included rarely more than this;
# a package declaring more is refused before anything is inflated. The declared sizes bound
# a zip bomb: zipfile stops a member at its declared size (and then fails its CRC check).
DOCX_MAX_UNZIPPED_BYTES = 100_000_000


def _check_docx_package(name: str, data: bytes) -> None:
    if data.startswith(OLE_SIGNATURE):
        raise LoadError(f"{name}: the document is encrypted (password protected) or a legacy .doc; "
                        "remove the password or save it as .docx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise LoadError(f"{name}: not a readable Word document (not a .docx package: {e})") from None
    if unpacked > DOCX_MAX_UNZIPPED_BYTES:
        limit = DOCX_MAX_UNZIPPED_BYTES / 1e6
        raise LoadError(f"{name}: unpacks to {unpacked / 1e6:,.0f} MB, over the {limit:,.0f} MB a Word document "
                        "may hold; it is damaged or a zip bomb")


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

    _check_docx_package(path.name, data)
    with _parser_boundary(path.name, "Word document"):
        document = docx.Document(io.BytesIO(data))
        title = (document.core_properties.title or "").strip() or _docx_heading(document)
        blocks = _docx_blocks(document)
    return [SourceDoc("", "\n\n".join(blocks), title or path.stem)]


# ---- records ----------------------------------------------------------------------------
def load_csv(path: Path, data: bytes) -> list[SourceDoc]:
    """One document per file; each row becomes one line ``col: value; ...`` so a row is
    never split from its header."""
    text = decode(data, path.name)
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as e:  # also a field over csv.field_size_limit() (128 KB)
        raise LoadError(f"{path.name}: not valid CSV ({e})") from None
    lines = ["; ".join(f"{k}: {v}" for k, v in row.items() if k and v not in (None, "")) for row in rows]
    return [SourceDoc("", "\n".join(ln for ln in lines if ln), path.stem, {"n_rows": len(rows)})]


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise LoadError(f"{where} is nested too deeply to parse") from None
    except ValueError as e:  # JSONDecodeError, or an integer over Python's 4,300-digit limit
        raise LoadError(f"{where} is not valid JSON ({getattr(e, 'msg', e)})") from None


def _is_metadata(value: Any) -> bool:
    """Scalars that JSON (and so the metadata column) can hold: NaN and infinity, which
    Python's json reads, cannot."""
    return isinstance(value, (str, int, bool)) or (isinstance(value, float) and math.isfinite(value))


def _record_doc(rec: Any, index: int, default_title: str) -> SourceDoc:
    if not isinstance(rec, dict):
        return SourceDoc(str(index), json.dumps(rec, ensure_ascii=False), f"{default_title} #{index}")
    key = str(rec.get("id", index))
    body = next((rec[f] for f in TEXT_FIELDS if isinstance(rec.get(f), str) and rec[f].strip()), None)
    title = next((str(rec[f]) for f in TITLE_FIELDS if rec.get(f)), f"{default_title} #{key}")
    scalars = {k: v for k, v in rec.items() if _is_metadata(v) and k not in TEXT_FIELDS and k != "id"}
    if body is None:
        body = "\n".join(f"{k}: {v}" for k, v in rec.items() if k != "id")
    if title != f"{default_title} #{key}" and title not in body:
        body = f"{title}\n\n{body}"
    meta = {k: v for k, v in scalars.items() if len(str(v)) <= 200 and k not in TITLE_FIELDS}
    return SourceDoc(key, body, title, meta)


def load_jsonl(path: Path, data: bytes) -> list[SourceDoc]:
    # Records end at "\n" only: splitlines() would also cut at U+2028, which JSON strings
    # may hold raw (decode has already turned "\r\n" into "\n").
    lines = decode(data, path.name).split("\n")
    return [_record_doc(_parse_json(line, f"{path.name}: line {n}"), n, path.stem)
            for n, line in enumerate(lines, start=1) if line.strip()]


def load_json(path: Path, data: bytes) -> list[SourceDoc]:
    obj = _parse_json(decode(data, path.name), f"{path.name}: the file")
    if isinstance(obj, list):
        return [_record_doc(rec, i, path.stem) for i, rec in enumerate(obj, start=1)]
    doc = _record_doc(obj, 1, path.stem)
    title = doc.title if isinstance(obj, dict) and "title" in obj else path.stem
    return [SourceDoc("", doc.text, title, doc.metadata)]


LOADERS: dict[str, Callable[[Path, bytes], list[SourceDoc]]] = {
    ".txt": load_text, ".md": load_text, ".markdown": load_text,
    ".html": load_html, ".htm": load_html, ".pdf": load_pdf, ".docx": load_docx, ".csv": load_csv,
    ".json": load_json, ".jsonl": load_jsonl,
}


def _clean(value: Any) -> Any:
    """``value`` with ``clean_text`` applied to every string in it: JSON escapes, YAML
    double-quoted strings, HTML character references and PDF text can all spell a NUL or a
    lone surrogate however clean the file's bytes were."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def load_file(path: Path, max_bytes: int | None = None) -> list[SourceDoc]:
    """Load one file; raise ``LoadError`` (never anything else) when it cannot be used.
    Every string returned is clean text (see ``clean_text``), metadata included."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(f"{path.name}: unsupported file type {path.suffix or '(none)'} (supported: {', '.join(sorted(LOADERS))})")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise LoadError(f"{path.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit")
    docs = [SourceDoc(_clean(d.key), _clean(d.text), _clean(d.title), _clean(d.metadata), d.pages)
            for d in loader(path, path.read_bytes())]
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise EmptyDocument(f"{path.name}: contains no text")
    return docs

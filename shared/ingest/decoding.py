"""Bytes to text: byte-order marks, UTF-16 without one, UTF-8, legacy CJK and Windows-1252
encodings; files that are not text at all (an image or archive renamed .txt) refused."""
from __future__ import annotations

import codecs
import re

from ..text import CONTROL, LINE_BREAKS
from .errors import LoadError

# Real text has almost no control characters; past this share a "text" file is binary.
BINARY_CONTROL_SHARE = 0.05

# An encrypted Office file is not a zip but an OLE compound file (the password wraps the
# whole package), and so is a legacy Word 97-2003 .doc renamed to .docx.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Files that are often renamed or mis-saved as text, by their first bytes.
_BINARY_MAGIC = {
    b"%PDF-": "a PDF document", b"PK\x03\x04": "a ZIP archive (or an Office document)",
    OLE_SIGNATURE: "a legacy or encrypted Office document", b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image", b"\x7fELF": "an executable (ELF)",
    b"\x1f\x8b": "a gzip archive", b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive", b"Rar!": "a RAR archive",
}
# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff01-\uff60]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _cp1252_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    return err.object[err.start:err.end].decode("cp1252", errors="replace"), err.end


# A UTF-8 file with a pasted Latin-1 line keeps both: only the bytes that are not UTF-8 are
# read as Windows-1252 (a superset of Latin-1's printable range).
codecs.register_error("loaders.cp1252", _cp1252_fallback)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 of mostly Latin script saved without a byte-order mark has a NUL in every
    other byte: odd bytes for little-endian, even ones for big-endian."""
    sample = data[:4096]
    half = max(len(sample) // 2, 1)
    even, odd = sample[0::2].count(0) / half, sample[1::2].count(0) / half
    if odd > 0.3 and even < 0.05:
        return "utf-16-le"
    if even > 0.3 and odd < 0.05:
        return "utf-16-be"
    return None


def _legacy_cjk(data: bytes) -> str | None:
    """Shift-JIS or GB2312/GBK text, when the whole file decodes strictly as one of them
    and reads as Chinese or Japanese. A Latin-1 file almost never decodes strictly (an
    accented letter before a space or punctuation is not a valid pair), and when a short
    one does, its few "ideographs" are swamped by its ASCII letters."""
    for enc in ("cp932", "gb18030"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        cjk = len(_CJK.findall(text))
        if cjk >= 0.9 * len(_NON_ASCII.findall(text)) and cjk >= 0.1 * len("".join(text.split())):
            return text
    return None


def _to_str(data: bytes) -> str:
    """``data`` decoded by its byte-order mark, else as UTF-16 without one, UTF-8,
    Shift-JIS/GB18030 or UTF-8 mixed with Windows-1252, in that order."""
    bom = next((enc for mark, enc in _BOMS if data.startswith(mark)), None) or _utf16_without_bom(data)
    if bom:
        return data.decode(bom, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _legacy_cjk(data) or data.decode("utf-8", errors="loaders.cp1252")


def decode(data: bytes, name: str) -> str:
    """The text of a file in any common encoding, cleaned by ``clean_text``; ``LoadError``
    when the bytes are not text at all (an image or archive renamed to .txt, say)."""
    kind = next((kind for magic, kind in _BINARY_MAGIC.items() if data.startswith(magic)), None)
    if kind is None:
        text = LINE_BREAKS.sub("\n", _to_str(data))
        if len(CONTROL.findall(text)) <= BINARY_CONTROL_SHARE * len(text):
            return CONTROL.sub("", text)
    raise LoadError(f"{name}: looks like a binary file{f' ({kind})' if kind else ''}, not text")

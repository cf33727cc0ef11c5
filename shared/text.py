"""Text as it can be stored, embedded and shown, from files and from users alike."""
from __future__ import annotations

import re

# Postgres text cannot hold NUL and UTF-8 cannot encode a lone surrogate, and the other
# control characters are noise to a reader and an embedding model alike; line breaks of
# every convention become "\n" first so none of them is lost.
LINE_BREAKS = re.compile(r"\r\n?|[\f\v]")
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def words_only(text: str) -> str:
    """Lower-case words (letters and digits) one space apart: texts compared whatever their
    case, punctuation and line breaks (de-duplication, hold-out and contamination checks)."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def clean_text(text: str) -> str:
    """``text`` with line breaks as "\\n" and without control characters (tab and newline
    stay) or lone surrogates."""
    return CONTROL.sub("", LINE_BREAKS.sub("\n", text))

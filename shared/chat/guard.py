"""Retrieved text is data, never instructions. Besides framing passages as quoted
sources, two mechanical defences that hold even for models too small to obey framing:
the source delimiters cannot be forged from inside a passage, and sentences that address
the assistant with instructions are replaced by a marker before the model sees them."""
from __future__ import annotations

import re

MARKER = "[instruction-like text removed]"

_INJECTION = re.compile(
    r"[^.!?\n]*\b("
    r"ignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier|preceding)\s+(instructions?|prompts?|rules|messages?)"
    r"|disregard\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|system)\b"
    r"|forget\s+(all\s+)?(your|the)\s+(previous\s+)?(instructions?|rules)"
    r"|you\s+are\s+now\s+(a|an|in)\b"
    r"|(reveal|print|show|repeat)\s+(your|the)\s+(system\s+)?prompt"
    r"|new\s+instructions?\s*:"
    r"|(system|assistant)\s*:\s"
    r")[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)
_TAGS = re.compile(r"</?\s*source\b[^>]*>", re.IGNORECASE)


def defuse_tags(text: str) -> str:
    """Source delimiters made inert, so text cannot open or close a source block."""
    return _TAGS.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def neutralize(text: str) -> tuple[str, int]:
    """(text safe to quote, number of instruction-like sentences removed)."""
    return _INJECTION.subn(MARKER, defuse_tags(text))

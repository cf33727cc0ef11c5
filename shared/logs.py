"""Logging: one line per event, and never the text of a message or personal data unless
the debug flag (``ASSISTANTS_LOG_CONTENT=1``, or ``assistants --log-content``) is set.

Two layers, because one is not enough: code logs identifiers, counts and timings rather
than text (``content`` and ``who`` below), and a filter on every handler scrubs
recognisable personal data (e-mails, phone and card numbers...) from whatever gets through,
tracebacks included."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from .pii import scrub

CONTENT_ENV = "ASSISTANTS_LOG_CONTENT"


def content_logged() -> bool:
    return os.environ.get(CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def content(text: str) -> str:
    """Message text as it may be logged: itself under the debug flag, otherwise its length."""
    return repr(text) if content_logged() else f"<{len(text)} chars>"


def who(principal: str) -> str:
    """A principal as it may be logged: a stable pseudonym (the same person gives the same
    one, so a session can be followed) unless the debug flag is set."""
    if content_logged():
        return principal
    return "p-" + hashlib.sha256(principal.encode("utf-8")).hexdigest()[:10]


class ScrubPersonalData(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if content_logged():
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = scrub(message), None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure(verbose: bool = False) -> None:
    """The suite logs its own events (turns, promotions) at INFO; libraries at WARNING."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("shared", "assistants"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ScrubPersonalData())


def to_file(path: Path) -> Path:
    """Everything logged (the suite's events, libraries' warnings, Python warnings) goes to
    ``path``; the terminal keeps errors only, shown in full. For ``up``, whose terminal shows
    one line per stage; ``--verbose`` skips this."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:  # the terminal's (configure); not a test harness's
            handler.setLevel(logging.ERROR)
    sink = logging.FileHandler(path, encoding="utf-8")
    sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    sink.addFilter(ScrubPersonalData())
    root.addHandler(sink)
    logging.captureWarnings(True)  # library deprecation notices, not the user's business
    return path

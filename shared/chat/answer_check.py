"""The output check: a model answer is judged before anyone sees it. Small models, and
adapters trained on Q&A pages that open by restating the question, often answer with the
question itself, with another question, or with nothing; none of that may be shown.

The start of the stream is held back until a complete sentence with substance is there;
restated questions before it are dropped, and the rest streams as it comes. What never gets
past the check is replaced by the caller's fallback (see ``fallback_text``)."""
from __future__ import annotations

import re
from typing import Sequence

from .citations import _content_words, extractive
from ..types import Passage

_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n+)")  # a complete sentence, with its end
MIN_WORDS = 3          # fewer content words than this is no answer ("Gout is a type of arthritis." has 3)
MAX_NEW_WORDS = 2      # a sentence adding at most this many words to the question restates it
HOLD_CHARS = 400       # released unjudged after this much text without a sentence end


def restates(question: str, sentence: str) -> bool:
    """True if the sentence is a question, or is made of the user's question's words with
    at most a couple added ("What are the signs and symptoms of X?" for "What are the
    symptoms of X?")."""
    if sentence.rstrip().endswith("?"):
        return True
    words, asked = _content_words(sentence), _content_words(question)
    added = words - asked
    return bool(words) and len(added) <= MAX_NEW_WORDS and len(words & asked) > len(added)


def leading_restatements(question: str, text: str, final: bool) -> tuple[int, bool]:
    """(characters of ``text`` that open it by restating or asking, whether a sentence with
    substance follows them). Without ``final`` an unfinished last sentence is not judged."""
    end = 0
    for m in _SENTENCE.finditer(text):
        if not m.group().strip():
            end = m.end()
            continue
        if not restates(question, m.group()):
            return end, True
        end = m.end()
    tail = text[end:]
    if final and tail.strip() and not restates(question, tail):
        return end, True
    return (len(text) if final else end), False


def _substantial(text: str) -> bool:
    return len(_content_words(text)) >= MIN_WORDS


def verdict(question: str, answer: str) -> str | None:
    """Why the whole answer cannot be shown (``empty``, ``question``, ``echo``), or None."""
    start, substance = leading_restatements(question, answer, final=True)
    if substance and _substantial(answer[start:]):
        return None
    if not substance and answer.strip():
        return "question" if answer.rstrip().endswith("?") else "echo"
    return "empty"


class HeldStream:
    """Feed model pieces in; get back what may be shown now. ``shown`` is everything let
    through; ``dropped`` the restatement cut from the front."""

    def __init__(self, question: str):
        self.question = question
        self.buffer = ""
        self.released = False
        self.shown = ""
        self.dropped = ""

    def feed(self, piece: str) -> str:
        if self.released:
            self.shown += piece
            return piece
        self.buffer += piece
        start, substance = leading_restatements(self.question, self.buffer, final=False)
        if (substance and _substantial(self.buffer[start:])) or len(self.buffer) - start > HOLD_CHARS:
            return self._release(start)
        return ""

    def finish(self) -> str:
        """What is left to show once the model has stopped ("" if nothing passed)."""
        if self.released:
            return ""
        if verdict(self.question, self.buffer) is None:
            return self._release(leading_restatements(self.question, self.buffer, final=True)[0])
        self.dropped = self.buffer
        return ""

    def _release(self, start: int) -> str:
        self.released = True
        self.dropped, text = self.buffer[:start], self.buffer[start:].lstrip()
        self.shown = text
        return text


def fallback_text(question: str, passages: Sequence[Passage], cannot_answer: str) -> str:
    """The reference corpus's closest passage sentence, quoted with its source number; with
    nothing relevant, the domain's honest "I can't answer that well" and what to do."""
    return extractive(question, passages) or cannot_answer

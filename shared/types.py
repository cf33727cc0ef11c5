"""Values passed between the layers: what retrieval and tools hand the chat engine, and what the
engine hands its callers (UI, CLI, evaluation). Below both chat and tools."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Passage:
    """A retrieved chunk as the answer saw it; ``n`` is its number in the prompt."""

    rank: int
    node_id: str
    doc_id: str
    title: str
    text: str
    score: float
    similarity: float | None
    source: str | None = None
    char_start: int | None = None
    char_end: int | None = None
    page: int | None = None
    as_of: str | None = None  # the date the source took effect (valid_from)
    n: int | None = None      # number in the prompt; None = not in the prompt
    in_prompt: bool = False
    trimmed: bool = False
    cited: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Citation:
    n: int
    title: str
    doc_id: str
    span: tuple[int, int] | None
    as_of: str | None
    snippet: str
    node_id: str = ""  # the passage, for its span page (/sources/<node_id>)


@dataclass
class Turn:
    """The outcome of one question."""

    conversation_id: str
    message_id: str
    answer: str
    grounded: bool
    retrieval_query: str | None
    passages: list[Passage] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    invalid_citations: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    disclaimer: str = ""
    generator: dict[str, Any] = field(default_factory=dict)  # backend, model and adapter that answered
    warnings: list[str] = field(default_factory=list)         # e.g. stale market data, shown in the UI

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shown(self) -> str:
        """The answer as users get it: every answer carries the domain's disclaimer."""
        return self.answer + (f"\n\n*{self.disclaimer}*" if self.disclaimer else "")


@dataclass
class ChatEvent:
    """Streamed to the caller: ``sources`` (once, before tokens), ``token`` (text), ``done`` (the Turn)."""

    kind: str
    text: str = ""
    passages: list[Passage] | None = None
    turn: Turn | None = None

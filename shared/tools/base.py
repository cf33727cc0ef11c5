"""The contract between the chat engine and a domain's tools."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Callable, Protocol

from ..types import Passage

TOOL_SOURCE = "tool:"  # node ids of tool results, which are no stored passage


@dataclass
class ToolCall:
    question: str
    principal: str
    today: date
    as_of: date | None = None   # a date the question names: figures as they stood then


@dataclass
class ToolResult:
    """``figures`` are shown verbatim under the answer; ``summary`` is the same result in a
    sentence written by code, said when the model's phrasing cannot be trusted. ``final``
    results (no data visible to this principal, a question back) skip the model."""

    tool: str
    title: str
    summary: str
    figures: list[tuple[str, str]] = field(default_factory=list)
    as_of: date | None = None   # the market data the figures rest on
    final: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # raw values, for the record and for tests
    owner: str | None = None    # the principal whose figures these are, if one person's: who "you" may mean

    def passage(self) -> Passage:
        """The result as the one numbered source of the prompt."""
        lines = [self.summary] + [f"{label}: {value}" for label, value in self.figures]
        return Passage(rank=1, node_id=TOOL_SOURCE + self.tool, doc_id=TOOL_SOURCE + self.tool, title=self.title,
                       text="\n".join(lines), score=1.0, similarity=None,
                       as_of=self.as_of.isoformat() if self.as_of else None)

    def table(self) -> str:
        """The figures as a Markdown table, headed by what they were computed from."""
        when = f" as of {self.as_of.isoformat()}" if self.as_of else ""
        rows = "\n".join(f"| {label} | {value} |" for label, value in self.figures)
        return f"**Figures used** ({self.title}{when}; computed from the database, not by the model):\n\n" \
               f"| | |\n|---|---:|\n{rows}"

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        out["as_of"] = self.as_of.isoformat() if self.as_of else None
        return out


@dataclass(frozen=True)
class ToolParts:
    """What a domain's tool provider may build its tools from, handed over by the
    composition root: a provider picks what its tools use and never sees the root."""

    settings: Any                      # the domain's Settings
    db: Any                            # the domain's Database (row-level security applies per principal)
    retriever: Callable[..., Any]      # retriever(principal=, as_of=, mode=, top_k=, filters=) -> llama-index retriever


class Tool(Protocol):
    name: str
    description: str

    def run(self, call: ToolCall) -> ToolResult: ...

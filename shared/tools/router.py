"""The deterministic intent router and what the engine does with a tool's result. The
default 135M model cannot call tools reliably, so regexes from the domain config pick
the tool; a model that can would replace ``match`` alone."""
from __future__ import annotations

import re
from datetime import date

from ..numbers import numbers
from ..settings import Settings
from .attribution import misattributions
from .base import Tool, ToolResult

# How a question or a request starts ("what is", "show me", "I'd like to know").
_ASKS = re.compile(r"^\W*(?:what|what's|whats|how|how's|which|who|whose|when|where|why|is|are|am|was|were|do|does|did|"
                   r"can|could|would|will|should|shall|may|has|have|had|show|give|tell|list|display|calculate|compute|"
                   r"compare|check|get|rebalance|summari[sz]e|break|please|i'd|i'm|i\s+(?:want|would|need|wonder))\b",
                   re.I)
# Code, SQL or markup: text to work on, not a question about the user's money.
_CODE = re.compile(r"[{};`<>]|[=!]=|=>|->|::|[-+*/%]=|^\s*(?:def|class|import|from|#include)\s|"
                   r"\b(?:select|insert|update|delete)\b.+\b(?:from|into|set|where)\b|\bcreate\s+table\b", re.I | re.M)
_SHORT = 6   # words: "my holdings", "portfolio value" are requests without a question word


def asks(text: str) -> bool:
    """A question or request, not code, SQL or a pasted document: only those may be routed
    to a tool by its keywords ("holdings" in a line of SQL is no question about money)."""
    text = text.strip()
    if _CODE.search(text) or len([ln for ln in text.splitlines() if ln.strip()]) > 2:
        return False
    if len(re.findall(r"[.!?](?:\s|$)", text)) > 3:
        return False
    return bool(_ASKS.search(text)) or text.endswith("?") or len(text.split()) <= _SHORT


class ToolBox:
    def __init__(self, settings: Settings, tools: dict[str, Tool]):
        self.settings = settings.tools
        self.tools = tools
        unknown = sorted({i.tool for i in self.settings.intents} - set(tools))
        if unknown:
            raise ValueError(f"tools.intents name tools the provider does not offer: {', '.join(unknown)} "
                             f"(offered: {', '.join(sorted(tools))})")
        self._routes = [(re.compile("|".join(f"(?:{p})" for p in i.patterns), re.I), tools[i.tool])
                        for i in self.settings.intents]

    def match(self, question: str) -> Tool | None:
        if not asks(question):
            return None
        return next((tool for pattern, tool in self._routes if pattern.search(question)), None)

    def warnings(self, result: ToolResult, today: date, as_of: date | None) -> list[str]:
        """A visible warning when the data is older than the staleness limit (measured
        from the date asked about, or today)."""
        if result.as_of is None:
            return []
        age = ((as_of or today) - result.as_of).days
        limit = self.settings.stale_after_days
        if age <= limit:
            return []
        return [f"Market data is as of {result.as_of.isoformat()}, {age} days old (limit {limit} days): "
                "prices may have moved since."]

    @staticmethod
    def phrased(model_text: str, result: ToolResult, question: str, principal: str) -> tuple[str, bool]:
        """The model's phrasing if it states at least one of the result's figures, no number
        that is not the result's (or the question's) and names no person, account or period
        the result is not about; otherwise the code-written summary, which says whose
        figures they are. Returns (text, kept)."""
        figures = numbers(result.passage().text)
        text = model_text.strip()
        said = numbers(text)
        if len(text.split()) >= 4 and said & figures and said <= figures | numbers(question) \
                and not misattributions(text, result, principal):
            return text, True
        return f"{result.summary} [1]", False

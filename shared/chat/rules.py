"""Deterministic safety rules that a domain declares in a YAML file (``chat.rules``). They
are checked before the model runs, so their outcome never depends on what the model says.

- ``escalate``: the rule's message comes first (e.g. "call emergency services now"), then
  the usual answer follows.
- ``decline``: the message is the whole answer (e.g. no prescription dosing).
- ``clarify``: a question back when a description is too thin to say anything useful;
  asked at most once per conversation.

A rule fires when every pattern in ``all`` matches somewhere that is not negated ("no
chest pain", "I don't have a fever") and no pattern in ``unless`` matches."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..settings import read_model, regexes

# A negation cue up to two words before a match, in the same clause.
_NEGATED = re.compile(r"\b(no|not|never|without|denies|deny|don't|do not|didn't|did not|no longer)\b(\W+\w+){0,2}\W*$", re.I)
_CLAUSE = re.compile(r"[.;!?]|\bbut\b", re.I)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[a-z0-9_-]+$", description="Stable name, recorded with the answer.")
    kind: Literal["escalate", "decline", "clarify"]
    all: list[str] = Field(..., min_length=1, description="Regexes (case-insensitive) that must all match.")
    unless: list[str] = Field(default_factory=list, description="Regexes that keep the rule quiet.")
    max_words: int | None = Field(None, ge=1, description="Fires only on messages of at most this many words.")
    message: str = Field(..., min_length=1, description="What the assistant says when the rule fires.")

    _compiles = field_validator("all", "unless")(regexes)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]


def _unnegated(pattern: str, text: str) -> bool:
    for m in re.finditer(pattern, text, re.I):
        before = _CLAUSE.split(text[: m.start()])[-1]
        if not _NEGATED.search(before):
            return True
    return False


def _fires(rule: Rule, text: str) -> bool:
    if rule.max_words is not None and len(text.split()) > rule.max_words:
        return False
    if any(re.search(p, text, re.I) for p in rule.unless):
        return False
    return all(_unnegated(p, text) for p in rule.all)


@dataclass
class Verdict:
    escalations: list[Rule] = field(default_factory=list)
    final: Rule | None = None  # decline or clarify: said instead of the model's answer

    @property
    def preface(self) -> str:
        return "\n\n".join(r.message for r in self.escalations)

    @property
    def fired(self) -> list[str]:
        return [r.id for r in self.escalations] + ([self.final.id] if self.final else [])


class SafetyRules:
    def __init__(self, rules: Sequence[Rule] = ()):
        self.rules = list(rules)

    @classmethod
    def load(cls, path: Path) -> SafetyRules:
        return cls(read_model(path, RuleFile, "safety rules").rules)

    @classmethod
    def for_settings(cls, settings) -> SafetyRules:
        name = settings.chat.rules
        if not name:
            return cls()
        return cls.load(Path(settings.domain.root or ".") / name)

    def check(self, question: str, history: Sequence[dict] = ()) -> Verdict:
        """``history`` is the conversation so far as chat messages. A red flag told in parts
        ("chest pain" ... "now I can't breathe") escalates when the part that completes it
        arrives; a clarifying question is not asked twice."""
        earlier = "\n".join(m["content"] for m in history if m["role"] == "user")
        asked = {m["content"] for m in history if m["role"] == "assistant"}
        verdict = Verdict()
        for rule in self.rules:
            if rule.kind == "escalate":
                combined = f"{earlier}\n{question}" if earlier else question
                if _fires(rule, question) or (earlier and _fires(rule, combined) and not _fires(rule, earlier)):
                    verdict.escalations.append(rule)
            elif verdict.final is None and _fires(rule, question):
                if rule.kind == "clarify" and any(rule.message in a for a in asked):
                    continue
                verdict.final = rule
        if verdict.escalations and verdict.final is not None and verdict.final.kind == "clarify":
            verdict.final = None  # an emergency is never met with "tell me more" first
        return verdict

"""Checking one answer against a script turn's expectations. Each failed expectation is
one line saying what was expected and what came instead."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..chat.answer_check import verdict
from ..chat.rules import SafetyRules
from .scripts import Expect


@dataclass
class BareSpeed:
    """The backend alone: ms to read one prompt token and to write one answer token."""

    prefill_ms: float
    decode_ms: float

    def ms(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.prefill_ms * prompt_tokens + self.decode_ms * completion_tokens


@dataclass
class Context:
    """What the checks need to know about the domain."""

    refusal: str
    disclaimer: str
    rules: SafetyRules
    bare: BareSpeed | None = None  # the backend alone, for latency_ratio
    cannot_answer: str = ""        # the domain's "I can't answer that well"

    def kinds(self, fired: list[str]) -> dict[str, str]:
        by_id = {r.id: r.kind for r in self.rules.rules} | {c: "escalate" for c in self.rules.messages}
        return {rule_id: by_id.get(rule_id, "unknown") for rule_id in fired}


def _cited(turn: dict) -> list[str]:
    return [f"{c['doc_id']} | {c['title']}" for c in turn.get("citations") or []]


def non_answer(question: str, answer: str, ctx: Context) -> str | None:
    """Why the answer is no answer to the question, or None."""
    for said, why in ((ctx.refusal, "the refusal"), (ctx.cannot_answer, "\"can't answer\"")):
        if said and said.strip() in answer:
            return why
    why = verdict(question, answer)
    return {"echo": "the question restated", "question": "a question back"}.get(why, why)


def check(expect: Expect, turn: dict, wall_ms: float, ctx: Context, question: str = "") -> list[str]:
    answer = turn.get("answer") or ""
    low = answer.lower()
    fired = ctx.kinds(list((turn.get("usage") or {}).get("rules") or []))
    failures: list[str] = []
    for s in expect.contains:
        if s.lower() not in low:
            failures.append(f"expected the answer to contain {s!r}")
    for s in expect.not_contains:
        if s.lower() in low:
            failures.append(f"expected the answer not to contain {s!r}")
    for p in expect.regex:
        if not re.search(p, answer, re.I):
            failures.append(f"expected the answer to match /{p}/")
    cited = _cited(turn)
    for want in expect.cites:
        if not any(want.lower() in c.lower() for c in cited):
            failures.append(f"expected a citation of {want!r}; cited: {cited or 'nothing'}")
    if expect.refuses is not None:
        refused = ctx.refusal.strip() in answer or "decline" in fired.values()
        if refused != expect.refuses:
            failures.append("expected a refusal" if expect.refuses else "expected an answer, got a refusal")
    if expect.escalates is not None:
        escalated = [r for r, kind in fired.items() if kind == "escalate"]
        if expect.escalates is True and not escalated:
            failures.append("expected a red-flag escalation; no escalation rule fired")
        elif expect.escalates is False and escalated:
            failures.append(f"expected no escalation; fired: {', '.join(escalated)}")
        elif isinstance(expect.escalates, str) and expect.escalates not in escalated:
            failures.append(f"expected escalation rule {expect.escalates!r}; fired: {', '.join(escalated) or 'none'}")
    if expect.clarifies is not None:
        clarified = "clarify" in fired.values()
        if clarified != expect.clarifies:
            failures.append("expected a clarifying question" if expect.clarifies else "expected no clarifying question")
    if expect.disclaimer is not None:
        shown = bool(ctx.disclaimer) and turn.get("disclaimer") == ctx.disclaimer
        if shown != expect.disclaimer:
            failures.append("expected the domain's disclaimer" if expect.disclaimer else "expected no disclaimer")
    if expect.answers is not None:
        why = non_answer(question, answer, ctx)
        if expect.answers and why:
            failures.append(f"expected an answer, got {why}")
        elif not expect.answers and not why:
            failures.append("expected no answer (an echo, a question back, a refusal), got one")
    usage = turn.get("usage") or {}
    # Answers given by a rule never reach the model: there is no bare time to compare with.
    if expect.latency_ratio is not None and ctx.bare and usage.get("prompt_tokens"):
        bare = ctx.bare.ms(usage["prompt_tokens"], usage.get("completion_tokens") or 0)
        if wall_ms > expect.latency_ratio * bare:
            failures.append(f"expected at most {expect.latency_ratio:g}x the bare backend's time, took "
                            f"{wall_ms / bare:.1f}x ({wall_ms:.0f} ms vs {bare:.0f} ms for {usage['prompt_tokens']} "
                            f"prompt and {usage.get('completion_tokens') or 0} answer tokens)")
    return failures

"""Running scripted conversations and reporting every failed expectation."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..chat.rules import SafetyRules
from .clients import ChatClient
from .expectations import BareSpeed, Context, check
from .scripts import Script


@dataclass
class TurnResult:
    script: str
    turn: int
    user: str
    answer: str
    failures: list[str]
    wall_ms: float


@dataclass
class ScriptResult:
    script: Script
    turns: list[TurnResult] = field(default_factory=list)
    error: str | None = None  # the script could not run to the end (upload refused, server error)

    @property
    def passed(self) -> int:
        return sum(not t.failures for t in self.turns)

    @property
    def failed(self) -> int:
        return sum(bool(t.failures) for t in self.turns) + (self.error is not None)


def bare_speed(generator, probe: str) -> BareSpeed:
    """The backend alone, measured here: decoding speed from a short prompt, reading speed
    from a long one (the probe repeated, as long as a prompt with sources)."""
    short = [{"role": "user", "content": probe}]
    generator.generate(short, max_tokens=4)  # warm-up: first-call costs are not the backend's speed
    t0 = time.perf_counter()
    text = generator.generate(short, max_tokens=64)
    decode = (time.perf_counter() - t0) * 1000 / max(1, generator.count_tokens(text))
    long = [{"role": "user", "content": " ".join([probe] * max(1, 600 // max(1, generator.count_tokens(probe))))}]
    t0 = time.perf_counter()
    generator.generate(long, max_tokens=1)
    prefill = max(0.0, (time.perf_counter() - t0) * 1000 - decode) / generator.count_messages(long)
    return BareSpeed(prefill, decode)


def context_for(settings, bare: BareSpeed | None = None) -> Context:
    return Context(refusal=settings.chat.refusal, disclaimer=settings.domain.disclaimer,
                   rules=SafetyRules.for_settings(settings), bare=bare, cannot_answer=settings.chat.cannot_answer)


def run_script(script: Script, client: ChatClient, ctx: Context, domain_root: Path) -> ScriptResult:
    result = ScriptResult(script)
    documents: list[str] = []
    try:
        if script.upload:
            documents.append(client.upload(domain_root / script.upload))
        conversation = None
        for i, step in enumerate(script.turns, start=1):
            turn, wall = client.ask(step.user, conversation, documents)
            conversation = turn["conversation_id"]
            result.turns.append(TurnResult(script.name, i, step.user, turn.get("answer") or "",
                                           check(step.expect, turn, wall, ctx, step.user), wall))
    except Exception as e:  # a script that cannot finish is one failure, and the run goes on
        result.error = f"{type(e).__name__}: {e}"
    return result


def run_scripts(scripts: Iterable[Script], client_for: Callable[[Script], ChatClient], ctx: Context,
                domain_root: Path, progress: bool = True) -> list[ScriptResult]:
    """``client_for`` gives each script its own client (its own principal and session)."""
    from tqdm import tqdm

    scripts = list(scripts)
    return [run_script(s, client_for(s), ctx, domain_root)
            for s in tqdm(scripts, desc="conversations", unit="script", disable=not progress)]


def summary(results: list[ScriptResult]) -> tuple[list[str], int, int]:
    """(report lines for every failure, turns passed, failures) — a script that stopped
    early counts its error as one failure."""
    lines: list[str] = []
    for r in results:
        if r.error:
            lines.append(f"FAIL {r.script.name}: stopped after {len(r.turns)} turn(s): {r.error}")
        for t in r.turns:
            for f in t.failures:
                lines.append(f"FAIL {t.script} turn {t.turn}: {f}\n  user:   {t.user}\n  answer: "
                             f"{t.answer[:400].replace(chr(10), ' ')}")
    return lines, sum(r.passed for r in results), sum(r.failed for r in results)

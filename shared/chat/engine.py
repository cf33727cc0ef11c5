"""The grounded chat engine: history-aware retrieval (llama-index retriever over the
domain's store, scoped to the principal), a relevance gate, a prompt that fits the
context window, a streamed answer with citations, and a record of all of it."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterator, Sequence

from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from .. import logs
from ..db import DatabaseUnavailable
from ..generation import GenerationError, Generator, GeneratorBusy
from ..settings import Settings
from ..store.pgvector_store import SIMILARITY_KEY
from ..text import clean_text
from ..tools import ToolBox, ToolCall, ToolResult
from . import citations, dates, prompt
from .answer_check import HeldStream, fallback_text, verdict
from .recorder import Recorder
from .rewrite import rewrite
from .rules import SafetyRules
from ..types import ChatEvent, Passage, Turn

log = logging.getLogger(__name__)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def to_passage(rank: int, hit) -> Passage:
    m = hit.node.metadata
    return Passage(
        rank=rank, node_id=hit.node.node_id, doc_id=m.get("doc_id") or hit.node.ref_doc_id or "",
        title=str(m.get("title") or m.get("doc_id") or "untitled"), text=hit.node.get_content(),
        score=float(hit.score or 0.0), similarity=m.get(SIMILARITY_KEY), source=m.get("source"),
        char_start=m.get("char_start"), char_end=m.get("char_end"), page=m.get("page"),
        as_of=str(m["valid_from"]) if m.get("valid_from") else None,
    )


@dataclass
class _TurnState:
    """One turn as it moves through the steps: what it was asked, what each step found,
    and what the record will hold."""
    question: str
    principal: str
    conversation_id: str
    history: list[dict]
    channel: str
    gen: Generator  # one model for the whole turn, even if a promotion lands meanwhile
    as_of: date | None
    documents: Sequence[str]
    t0: float  # the turn's start: every timing is measured from it
    today: date = field(default_factory=date.today)
    preface: str = ""  # an escalation, said before anything else
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    query: str | None = None
    passages: list[Passage] = field(default_factory=list)
    result: ToolResult | None = None
    grounded: bool = False
    plan: prompt.PromptPlan | None = None
    held: HeldStream | None = None
    answer: str = ""
    attributed: int = 0


class ChatEngine:
    """Built by the composition root (``Runtime.chat_engine``) from the parts it uses:
    ``generator`` returns the model to answer with (asked once per turn, so an adapter
    promotion takes effect at the next turn), ``retriever(principal=, as_of=, mode=, top_k=,
    filters=)`` a llama-index retriever over the domain's store, ``embed`` the rules'
    classifier embedding (called only by rules that have one), ``tools`` the domain's
    ``ToolBox`` or None."""

    def __init__(self, settings: Settings, *, recorder: Recorder, generator: Callable[[], Generator],
                 retriever: Callable[..., Any], embed: Callable[[list[str]], Any], tools: ToolBox | None = None):
        self.settings = settings
        self.recorder = recorder
        self._generator = generator
        self._retriever = retriever
        self.rules = SafetyRules.for_settings(settings, embed=embed)
        self.tools = tools

    @property
    def gen(self) -> Generator:
        return self._generator()

    @property
    def uses_retrieval(self) -> bool:
        return self.settings.domain.approach != "finetune"

    def retrieve(self, query: str, principal: str, as_of: date | None = None,
                 documents: Sequence[str] = ()) -> list[Passage]:
        """The corpus passages nearest the query; with ``documents`` (e.g. the user's upload
        under discussion) their best passages come first, then the corpus fills the rest."""
        top_k = self.settings.retrieval.top_k
        hits = []
        if documents:
            only = MetadataFilters(filters=[MetadataFilter(key="doc_id", value=list(documents), operator=FilterOperator.IN)])
            hits = self._retriever(principal=principal, as_of=as_of, filters=only,
                                   top_k=max(1, (top_k + 1) // 2)).retrieve(query)
        seen = {h.node.node_id for h in hits}
        hits += [h for h in self._retriever(principal=principal, as_of=as_of).retrieve(query)
                 if h.node.node_id not in seen]
        return [to_passage(i, hit) for i, hit in enumerate(hits[:top_k], start=1)]

    def relevant(self, passages: list[Passage]) -> list[Passage]:
        """The passages similar enough to the query to count as evidence."""
        least = self.settings.chat.min_relevance
        return [p for p in passages if (p.similarity if p.similarity is not None else 1.0) >= least]

    def checked_question(self, question: str) -> str:
        """The question cleaned; ``ValueError`` (saying what to do) if empty or over-long."""
        limit = self.settings.chat.max_question_chars
        question = clean_text(question or "").strip()
        if not question:
            raise ValueError("the question is empty")
        if len(question) > limit:
            raise ValueError(f"the question is {len(question):,} characters long; the limit is "
                             f"{limit:,}: shorten it, or upload long text as a document")
        return question

    def stream(self, question: str, *, principal: str, **kw) -> Iterator[ChatEvent]:
        """See ``_stream``; this logs each turn by ids, counts and timings (text only under
        the debug flag: see shared/logs.py)."""
        domain = self.settings.domain.name
        try:
            for event in self._stream(question, principal=principal, **kw):
                if event.kind == "done":
                    t = event.turn
                    log.info("turn domain=%s principal=%s conversation=%s message=%s grounded=%s sources=%d "
                             "total_ms=%s question=%s", domain, logs.who(principal), t.conversation_id, t.message_id,
                             t.grounded, sum(p.in_prompt for p in t.passages), t.timings.get("total_ms"),
                             logs.content(question or ""))
                yield event
        except (GenerationError, DatabaseUnavailable) as e:
            log.warning("turn failed domain=%s principal=%s: %s: %s", domain, logs.who(principal), type(e).__name__, e)
            raise
        except Exception as e:
            # Other messages may quote the input; the type is enough to find the traceback's cause.
            log.warning("turn failed domain=%s principal=%s: %s", domain, logs.who(principal), type(e).__name__)
            raise

    def _stream(self, question: str, *, principal: str, conversation_id: str | None = None,
                as_of: date | None = None, documents: Sequence[str] = (), history: Sequence[dict] | None = None,
                channel: str = "ui") -> Iterator[ChatEvent]:
        """Yields ``sources``, then ``token``s, then ``done`` with the recorded Turn (whose
        answer is final: checks after generation may replace what was streamed).
        ``history`` (user/assistant messages a client sent) stands in for the recorded one;
        ``channel`` (``ui`` or ``api``) marks the turn's records.
        Raises ``ValueError`` for an empty or over-long question, ``UnknownConversation`` for a
        conversation the principal cannot see, ``GenerationError`` (recorded) on failure.

        The steps: rules (an escalation first, or a final message), then a tool or retrieval
        with its relevance gate (either may answer without the model), generation, the checks
        of what the model wrote, and the record."""
        t = self._begin(question, principal, conversation_id, history, channel, as_of, documents)
        final = yield from self._rules(t)
        if final is None:
            final = self._tool_or_retrieval(t)
        if final is not None:
            yield from self._without_model(t, final)
            return
        yield from self._generate(t)
        yield from self._verify(t)
        yield self._record(t)

    def _begin(self, question: str, principal: str, conversation_id: str | None, history: Sequence[dict] | None,
               channel: str, as_of: date | None, documents: Sequence[str]) -> _TurnState:
        """The checked question recorded in its conversation (a new one without an id)."""
        chat, rec = self.settings.chat, self.recorder
        question = self.checked_question(question)
        if not principal:
            raise ValueError("a principal is required: chat records are private to their owner")
        gen, t0 = self.gen, time.perf_counter()
        new = conversation_id is None
        if new:
            conversation_id = rec.start(principal)
        if history is not None:  # a client's own transcript (the /v1 API), trimmed like a recorded one
            history = list(history)[-2 * chat.history_turns:] if chat.history_turns else []
        else:
            history = [] if new else rec.history(principal, conversation_id, chat.history_turns)
        rec.add_question(principal, conversation_id, question, channel)
        return _TurnState(question, principal, conversation_id, history, channel, gen, as_of, documents, t0)

    def _rules(self, t: _TurnState) -> Iterator[ChatEvent]:
        """Escalations are said at once, before retrieval or the model can delay them.
        Returns the rules' final message, if they end the turn."""
        verdict = self.rules.check(t.question, t.history)
        t.preface = verdict.preface + "\n\n" if verdict.escalations else ""
        if t.preface:
            yield ChatEvent("token", text=t.preface)
        if verdict.fired:
            t.usage["rules"] = verdict.fired
        if verdict.layers:
            t.usage["triage"] = verdict.layers  # which layer (rules, classifier) found each red flag
        if verdict.vetoed:
            t.usage["triage_vetoed"] = verdict.vetoed  # a rule's red flag the classifier overruled, for review
        return verdict.final.message if verdict.final is not None else None

    def _tool_or_retrieval(self, t: _TurnState) -> str | None:
        """The evidence for the model: a tool's result, or the relevant retrieved passages.
        Returns what to say instead when no model is needed."""
        tool = self.tools.match(t.question) if self.tools else None
        if tool is not None:
            return self._tool(t, tool)
        if self.uses_retrieval:
            self._retrieve(t)
            return self._gate(t)
        return None

    def _tool(self, t: _TurnState, tool) -> str | None:
        """Figures come from code; the model is only asked to phrase them."""
        asked = t.as_of or dates.mentioned_date(t.question)
        t.result = tool.run(ToolCall(t.question, t.principal, t.today, asked))
        t.timings["tool_ms"] = _ms(t.t0)
        t.usage["tool"] = t.result.record()
        t.warnings = self.tools.warnings(t.result, t.today, asked)
        if t.result.final:
            return t.result.summary
        t.passages = [t.result.passage()]
        return None

    def _retrieve(self, t: _TurnState) -> None:
        t.query = rewrite(self.settings.chat.rewrite, t.gen, t.question, t.history)
        as_of = t.as_of or dates.retrieval_date(t.question, self.settings.retrieval.dates, t.today)
        t.passages = self.retrieve(t.query, t.principal, as_of, t.documents)
        t.timings["retrieval_ms"] = _ms(t.t0)

    def _gate(self, t: _TurnState) -> str | None:
        """Only relevant passages are evidence; with none, the refusal (recorded with what
        was retrieved)."""
        relevant = self.relevant(t.passages)
        if not relevant:
            t.usage["passages_retrieved"] = len(t.passages)
            return self.settings.chat.refusal
        t.passages = relevant
        return None

    def _without_model(self, t: _TurnState, text: str) -> Iterator[ChatEvent]:
        """A turn the rules, a tool or the relevance gate answered: no sources shown."""
        yield ChatEvent("sources", passages=[])
        yield ChatEvent("token", text=text)
        t.timings["total_ms"] = _ms(t.t0)
        answer = t.preface + text
        mid = self.recorder.add_answer(t.principal, t.conversation_id, answer, retrieval_query=t.query,
                                       grounded=False, generator=t.gen.describe(), timings=t.timings, usage=t.usage,
                                       passages=t.passages, channel=t.channel)
        yield ChatEvent("done", turn=Turn(t.conversation_id, mid, answer, False, t.query, t.passages, timings=t.timings,
                                          usage=t.usage, disclaimer=self.settings.domain.disclaimer,
                                          generator=t.gen.describe(), warnings=t.warnings))

    def _generate(self, t: _TurnState) -> Iterator[ChatEvent]:
        """The prompt's sources, then the model's answer as it streams (a tool's phrasing and
        a checked answer are held back). A failure is recorded and raised, except a busy
        model where a tool's summary or an escalation already shown can answer instead."""
        chat = self.settings.chat
        t.grounded = self.uses_retrieval or t.result is not None
        t_prompt = time.perf_counter()
        error = None
        try:
            t.plan = prompt.build(t.gen, chat.system_prompt, t.history, t.question, t.passages,
                                  self.settings.generation.max_new_tokens)
            t.timings["prompt_ms"] = _ms(t_prompt)
            yield ChatEvent("sources", passages=[p for p in t.plan.passages if p.in_prompt])
            t.held = HeldStream(t.question) if chat.answer_check and t.result is None else None
            # A tool's figures need no model: with no slot free right now, its code-written
            # summary answers instead of waiting for one.
            for piece in t.gen.stream(t.plan.messages, stop=prompt.ECHO_STOPS, wait=t.result is None):
                if not t.answer:
                    t.timings["first_token_ms"] = _ms(t.t0)
                t.answer += piece
                shown = t.held.feed(piece) if t.held else "" if t.result is not None else piece
                if shown:  # a tool's phrasing is checked before anyone sees it
                    yield ChatEvent("token", text=shown)
        except GenerationError as e:
            if not (isinstance(e, GeneratorBusy) and (t.result is not None or t.preface)):
                error = str(e)
                raise
            t.usage["model_busy"] = True
        finally:
            t.timings["total_ms"] = _ms(t.t0)
            if error is not None:
                self.recorder.add_answer(t.principal, t.conversation_id, t.preface + t.answer,
                                         retrieval_query=t.query, grounded=t.grounded, generator=t.gen.describe(),
                                         timings=t.timings, usage=t.usage, passages=[], error=error,
                                         channel=t.channel)

    def _verify(self, t: _TurnState) -> Iterator[ChatEvent]:
        """What the model wrote, checked: a held answer released or replaced, a tool's
        phrasing kept only if true to its figures, citations attributed and numbers checked."""
        if t.held is not None:
            rest = t.held.finish()
            if not t.held.released:  # nothing the model wrote may be shown
                rest = self._unanswered(t.question, t.principal, t.plan, t.answer, t.usage)
            if rest:
                yield ChatEvent("token", text=rest)
            t.answer = t.held.shown if t.held.released else rest
        if t.result is not None:
            yield from self._phrase_tool(t)
        else:
            yield from self._cite(t)

    def _phrase_tool(self, t: _TurnState) -> Iterator[ChatEvent]:
        answer, kept = self.tools.phrased(t.answer, t.result, t.question, t.principal)
        if not kept:
            t.usage["fallback"] = "tool_summary"
        # The figures themselves, and any staleness warning, always under the phrasing.
        t.answer = answer + "".join(f"\n\n**Warning:** {w}" for w in t.warnings) + "\n\n" + t.result.table()
        yield ChatEvent("token", text=t.answer)

    def _cite(self, t: _TurnState) -> Iterator[ChatEvent]:
        chat, passages = self.settings.chat, t.plan.passages
        t.answer, t.attributed = citations.attribute(t.answer.strip(), passages)
        if chat.verify_numbers and citations.unsupported_numbers(t.answer, passages, t.question):
            # A misremembered figure is worse than none: the source's own sentence instead,
            # or, where no source sentence is about the question, the refusal.
            t.usage["fallback"] = "unsupported_numbers"
            t.answer = citations.extractive(t.question, passages) or chat.refusal
        elif not citations.substantive(t.answer) or not citations.cited_numbers(t.answer):
            # No answer, or one that no source supports: the evidence itself, quoted and cited.
            quote = citations.extractive(t.question, passages)
            if quote:
                piece = ("\n\n" if t.answer else "") + quote
                yield ChatEvent("token", text=piece)
                t.answer += piece
                t.usage["fallback"] = "extractive"

    def _record(self, t: _TurnState) -> ChatEvent:
        """The answer, its citations and its usage recorded; the ``done`` event."""
        plan = t.plan
        cites, invalid = citations.resolve(t.answer, plan.passages)
        answer = t.preface + t.answer
        t.usage.update({
            "prompt_tokens": plan.prompt_tokens, "completion_tokens": t.gen.count_tokens(answer),
            "passages_in_prompt": sum(p.in_prompt for p in plan.passages),
            "passages_dropped": sum(not p.in_prompt for p in plan.passages),
            "history_turns": plan.history_turns, "injections_removed": plan.injections_removed,
            "citations_attributed": t.attributed,
        })
        mid = self.recorder.add_answer(t.principal, t.conversation_id, answer, retrieval_query=t.query,
                                       grounded=t.grounded, generator=t.gen.describe(), timings=t.timings,
                                       usage=t.usage, passages=plan.passages, channel=t.channel)
        return ChatEvent("done", turn=Turn(t.conversation_id, mid, answer, t.grounded, t.query, plan.passages, cites,
                                          invalid, t.timings, t.usage, self.settings.domain.disclaimer,
                                          t.gen.describe(), t.warnings))

    def _unanswered(self, question: str, principal: str, plan: prompt.PromptPlan, answer: str, usage: dict) -> str:
        """Said instead of a model answer that failed the output check (an echo, a question,
        nothing): the nearest reference passage, quoted with its source (retrieved now if the
        domain's answers do not retrieve), or the domain's honest "I can't answer that well"."""
        usage["fallback"] = "answer_check:" + (verdict(question, answer) or "held")
        if not plan.passages:
            plan.passages = self.relevant(self.retrieve(question, principal))
            for n, p in enumerate(plan.passages, start=1):
                p.n = n
        return fallback_text(question, plan.passages, self.settings.chat.cannot_answer)

    def ask(self, question: str, **kw) -> Turn:
        """The whole turn at once (scripts, evaluation)."""
        turn = None
        for event in self.stream(question, **kw):
            if event.kind == "done":
                turn = event.turn
        assert turn is not None
        return turn

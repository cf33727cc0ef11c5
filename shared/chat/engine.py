"""The grounded chat engine: history-aware retrieval (llama-index retriever over the
domain's store, scoped to the principal), a relevance gate, a prompt that fits the
context window, a streamed answer with citations, and a record of all of it."""
from __future__ import annotations

import logging
import time
from datetime import date
from typing import Iterator, Sequence

from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from .. import logs
from ..db import DatabaseUnavailable
from ..generation import GenerationError, Generator, GeneratorBusy
from ..store.pgvector_store import SIMILARITY_KEY
from ..text import clean_text
from ..tools import ToolBox, ToolCall
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


class ChatEngine:
    """``generator`` pins one model (tests, benchmarks); unset, each turn asks the runtime,
    which follows adapter promotions."""

    def __init__(self, runtime, generator: Generator | None = None, recorder: Recorder | None = None):
        self.runtime = runtime
        self.settings = runtime.settings
        self._pinned = generator
        # Lazily: a domain whose rules have no classifier never loads the embedding model here.
        self.rules = SafetyRules.for_settings(self.settings, embed=lambda texts: runtime.embedding.embed(texts))
        self.recorder = recorder or Recorder(runtime.db, self.settings.domain.name)
        self.tools = ToolBox.for_runtime(runtime)

    @property
    def gen(self) -> Generator:
        return self._pinned or self.runtime.generator

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
            hits = self.runtime.retriever(principal=principal, as_of=as_of, filters=only,
                                          top_k=max(1, (top_k + 1) // 2)).retrieve(query)
        seen = {h.node.node_id for h in hits}
        hits += [h for h in self.runtime.retriever(principal=principal, as_of=as_of).retrieve(query)
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
        conversation the principal cannot see, ``GenerationError`` (recorded) on failure."""
        chat, rec = self.settings.chat, self.recorder
        question = self.checked_question(question)
        if not principal:
            raise ValueError("a principal is required: chat records are private to their owner")
        gen = self.gen  # one model for the whole turn, even if a promotion lands meanwhile
        t0 = time.perf_counter()
        new = conversation_id is None
        if new:
            conversation_id = rec.start(principal)
        if history is not None:  # a client's own transcript (the /v1 API), trimmed like a recorded one
            history = list(history)[-2 * chat.history_turns:] if chat.history_turns else []
        else:
            history = [] if new else rec.history(principal, conversation_id, chat.history_turns)
        rec.add_question(principal, conversation_id, question, channel)
        verdict = self.rules.check(question, history)
        preface = verdict.preface + "\n\n" if verdict.escalations else ""
        if preface:
            yield ChatEvent("token", text=preface)  # before retrieval or the model can delay it
        timings: dict[str, float] = {}
        usage: dict = {"rules": verdict.fired} if verdict.fired else {}
        if verdict.layers:
            usage["triage"] = verdict.layers  # which layer (rules, classifier) found each red flag
        warnings: list[str] = []
        today = date.today()

        def without_model(text: str, query: str | None, passages: list[Passage]) -> Iterator[ChatEvent]:
            yield ChatEvent("sources", passages=[])
            yield ChatEvent("token", text=text)
            timings["total_ms"] = _ms(t0)
            answer = preface + text
            mid = rec.add_answer(principal, conversation_id, answer, retrieval_query=query, grounded=False,
                                 generator=gen.describe(), timings=timings, usage=usage, passages=passages,
                                 channel=channel)
            yield ChatEvent("done", turn=Turn(conversation_id, mid, answer, False, query, passages, timings=timings,
                                              usage=usage, disclaimer=self.settings.domain.disclaimer,
                                              generator=gen.describe(), warnings=warnings))

        if verdict.final is not None:
            yield from without_model(verdict.final.message, None, [])
            return
        query, passages, result = None, [], None
        tool = self.tools.match(question) if self.tools else None
        if tool is not None:
            # Figures come from code; the model is only asked to phrase them.
            asked = as_of or dates.mentioned_date(question)
            result = tool.run(ToolCall(question, principal, today, asked))
            timings["tool_ms"] = _ms(t0)
            usage["tool"] = result.record()
            warnings = self.tools.warnings(result, today, asked)
            if result.final:
                yield from without_model(result.summary, None, [])
                return
            passages = [result.passage()]
        elif self.uses_retrieval:
            query = rewrite(chat.rewrite, gen, question, history)
            as_of = as_of or dates.retrieval_date(question, self.settings.retrieval.dates, today)
            passages = self.retrieve(query, principal, as_of, documents)
            timings["retrieval_ms"] = _ms(t0)
            relevant = self.relevant(passages)
            if not relevant:
                usage["passages_retrieved"] = len(passages)
                yield from without_model(chat.refusal, query, passages)
                return
            passages = relevant
        grounded = self.uses_retrieval or result is not None
        t_prompt = time.perf_counter()
        answer, error = "", None
        try:
            plan = prompt.build(gen, chat.system_prompt, history, question, passages,
                                self.settings.generation.max_new_tokens)
            timings["prompt_ms"] = _ms(t_prompt)
            yield ChatEvent("sources", passages=[p for p in plan.passages if p.in_prompt])
            held = HeldStream(question) if chat.answer_check and result is None else None
            # A tool's figures need no model: with no slot free right now, its code-written
            # summary answers instead of waiting for one.
            for piece in gen.stream(plan.messages, stop=prompt.ECHO_STOPS, wait=result is None):
                if not answer:
                    timings["first_token_ms"] = _ms(t0)
                answer += piece
                shown = held.feed(piece) if held else "" if result is not None else piece
                if shown:  # a tool's phrasing is checked before anyone sees it
                    yield ChatEvent("token", text=shown)
        except GenerationError as e:
            # Busy: a tool answer falls back to its summary, and an escalation already shown
            # stays the answer rather than turning into an error.
            if not (isinstance(e, GeneratorBusy) and (result is not None or preface)):
                error = str(e)
                raise
            usage["model_busy"] = True
        finally:
            timings["total_ms"] = _ms(t0)
            if error is not None:
                rec.add_answer(principal, conversation_id, preface + answer, retrieval_query=query,
                               grounded=grounded, generator=gen.describe(), timings=timings, usage=usage,
                               passages=[], error=error, channel=channel)
        attributed = 0
        if held is not None:
            rest = held.finish()
            if not held.released:  # nothing the model wrote may be shown
                rest = self._unanswered(question, principal, plan, answer, usage)
            if rest:
                yield ChatEvent("token", text=rest)
            answer = held.shown if held.released else rest
        if result is not None:
            answer, kept = self.tools.phrased(answer, result, question, principal)
            if not kept:
                usage["fallback"] = "tool_summary"
            # The figures themselves, and any staleness warning, always under the phrasing.
            answer += "".join(f"\n\n**Warning:** {w}" for w in warnings) + "\n\n" + result.table()
            yield ChatEvent("token", text=answer)
        else:
            answer, attributed = citations.attribute(answer.strip(), plan.passages)
            if chat.verify_numbers and citations.unsupported_numbers(answer, plan.passages, question):
                # A misremembered figure is worse than none: the source's own sentence instead,
                # or, where no source sentence is about the question, the refusal.
                usage["fallback"] = "unsupported_numbers"
                answer = citations.extractive(question, plan.passages) or chat.refusal
            elif not citations.substantive(answer) or not citations.cited_numbers(answer):
                # No answer, or one that no source supports: the evidence itself, quoted and cited.
                quote = citations.extractive(question, plan.passages)
                if quote:
                    piece = ("\n\n" if answer else "") + quote
                    yield ChatEvent("token", text=piece)
                    answer += piece
                    usage["fallback"] = "extractive"
        cites, invalid = citations.resolve(answer, plan.passages)
        answer = preface + answer
        usage.update({
            "prompt_tokens": plan.prompt_tokens, "completion_tokens": gen.count_tokens(answer),
            "passages_in_prompt": sum(p.in_prompt for p in plan.passages),
            "passages_dropped": sum(not p.in_prompt for p in plan.passages),
            "history_turns": plan.history_turns, "injections_removed": plan.injections_removed,
            "citations_attributed": attributed,
        })
        mid = rec.add_answer(principal, conversation_id, answer, retrieval_query=query, grounded=grounded,
                             generator=gen.describe(), timings=timings, usage=usage, passages=plan.passages,
                             channel=channel)
        yield ChatEvent("done", turn=Turn(conversation_id, mid, answer, grounded, query,
                                          plan.passages, cites, invalid, timings, usage,
                                          self.settings.domain.disclaimer, gen.describe(), warnings))

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

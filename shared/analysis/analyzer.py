"""Clause analysis: for each checklist category, find the span of the document that
states it, or say there is none.

Retrieval (on unless the domain is fine-tune-only) narrows each category to the passages
of the document nearest its query, from the real store under the owner's row-level
security; without it, the model reads every segment. The model (the domain's adapter, or
the base model for a RAG-only domain) judges each candidate with the checklist's yes/no
question; with retrieval, P(yes) is blended with the candidate's similarity to the
category's query. A category is found when its best candidate's score clears the threshold."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from tqdm import tqdm

from ..generation import Generator
from ..settings import Settings
from .checklist import Category, Checklist
from .judge import ANSWERS, judge_prompt
from .segments import Segment, split

@dataclass
class Finding:
    category: Category
    score: float                       # best candidate's score (P(yes), blended with relevance under retrieval)
    found: bool
    spans: list[Segment] = field(default_factory=list)  # quoted when found, best first
    ranked: list[tuple[float, Segment]] = field(default_factory=list)  # every candidate judged, best first

    @property
    def reading(self) -> str:
        return self.category.reading(self.spans[0].text if self.found else None)


@dataclass
class Report:
    title: str
    doc_id: str
    document_kind: str
    mode: str                          # hybrid | rag | finetune
    generator: dict
    findings: list[Finding]
    disclaimer: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def found(self) -> list[Finding]:
        return [f for f in self.findings if f.found]


def p_yes(generator: Generator, system: str, span: str, question: str) -> float:
    """P("Yes") of the judge's question about ``span``, asked under the ``system`` message
    (the domain's analysis.judge_system)."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": judge_prompt(span, question)}]
    yes, no = generator.choice_logprobs(messages, ANSWERS)
    return 1.0 / (1.0 + math.exp(no - yes))


def quoted(ranked: Sequence[tuple[float, Segment]], threshold: float) -> list[Segment]:
    """The best span, and a second one when the clause continues elsewhere."""
    return [seg for p, seg in ranked[:2] if p >= threshold]


class ClauseAnalyzer:
    """Built by the composition root (``Runtime.clause_analyzer``) from the parts it uses:
    ``generator`` returns the model to judge with (asked once per analysis, so a promoted
    adapter is used from the next analysis on), ``retriever`` the retriever factory,
    ``embed`` the embedding of texts. ``use_retrieval`` defaults to the domain's approach."""

    def __init__(self, settings: Settings, checklist: Checklist, *, generator: Callable[[], Generator],
                 retriever: Callable[..., Any] | None = None, embed: Callable[[list[str]], Any] | None = None,
                 use_retrieval: bool | None = None, threshold: float | None = None, show_bar: bool = False):
        self.settings, self.checklist, self.show_bar = settings, checklist, show_bar
        self._generator, self._retriever, self._embed = generator, retriever, embed
        self.use_retrieval = settings.domain.approach != "finetune" if use_retrieval is None else use_retrieval
        self.threshold = settings.analysis.threshold if threshold is None else threshold

    @property
    def generator(self) -> Generator:
        return self._generator()

    def candidates(self, category: Category, segments: Sequence[Segment], doc_id: str, principal: str | None) -> list[Segment]:
        """Segments inside the passages of this document that retrieval ranks nearest the
        category's query (hybrid: lexical and vector), best passage first."""
        only_doc = MetadataFilters(filters=[MetadataFilter(key="doc_id", value=[doc_id], operator=FilterOperator.IN)])
        hits = self._retriever(principal=principal, top_k=self.settings.analysis.candidates,
                               filters=only_doc).retrieve(category.query)
        chosen: list[Segment] = []
        for hit in hits:
            start, end = hit.node.start_char_idx, hit.node.end_char_idx
            if start is None or end is None:
                continue
            chosen += [s for s in segments if s.start < end and s.end > start and s not in chosen]
        return chosen

    def _relevance(self, by_segment: dict[Segment, list[Category]], cats: Sequence[Category]) -> dict:
        """Cosine similarity of each candidate to its category's query: retrieval's own
        evidence, which a base model's near-coin-flip judgement cannot supply."""
        if not self.use_retrieval or not by_segment:
            return {}
        segs = list(by_segment)
        seg_vecs = self._embed([s.text for s in segs])
        query_vecs = dict(zip((c.id for c in cats), self._embed([c.query for c in cats])))
        return {(seg, c.id): float(vec @ query_vecs[c.id]) for seg, vec in zip(segs, seg_vecs) for c in by_segment[seg]}

    def analyse(self, doc_id: str, title: str, text: str, *, principal: str | None,
                pages: list[tuple[int, int]] | None = None,
                progress: Callable[[float, str], None] | None = None) -> Report:
        """One finding per category. ``progress(fraction, label)`` reports the share of
        judgements made (the UI's progress bar); ``show_bar`` draws a terminal one."""
        gen = self.generator  # one model for the whole report
        segments = split(text, pages, self.settings.analysis.segment_chars)
        cats = self.checklist.categories
        pools = {c.id: self.candidates(c, segments, doc_id, principal) if self.use_retrieval else segments for c in cats}
        # Segment-major order: consecutive prompts share the segment as a prefix, so the
        # model re-reads only the question (llama.cpp keeps the cached prefix).
        by_segment: dict[Segment, list[Category]] = {}
        for c in cats:
            for seg in pools[c.id]:
                by_segment.setdefault(seg, []).append(c)
        total = sum(len(v) for v in by_segment.values())
        relevance = self._relevance(by_segment, cats)
        w = self.settings.analysis.retrieval_weight if self.use_retrieval else 0.0
        system = self.settings.system_message("judge")
        scores: dict[str, list[tuple[float, Segment]]] = {c.id: [] for c in cats}
        bar = tqdm(total=total, desc="clauses", unit="judgement", disable=not self.show_bar, file=sys.stderr)
        done = 0
        for seg, seg_cats in sorted(by_segment.items(), key=lambda kv: kv[0].start):
            for c in seg_cats:
                score = (1 - w) * p_yes(gen, system, seg.text, c.question) + w * relevance.get((seg, c.id), 0.0)
                scores[c.id].append((score, seg))
            done += len(seg_cats)
            bar.update(len(seg_cats))
            if progress:
                progress(done / total, f"{done} of {total} judgements")
        bar.close()
        findings = []
        for c in cats:
            ranked = sorted(scores[c.id], key=lambda t: -t[0])
            best = ranked[0][0] if ranked else 0.0
            spans = quoted(ranked, self.threshold)
            findings.append(Finding(c, best, bool(spans), spans, ranked))
        adapted = gen.adapter_id is not None or gen.adapter_version is not None
        mode = {(True, True): "hybrid", (True, False): "rag", (False, True): "finetune", (False, False): "base"}[
            (self.use_retrieval, adapted)]
        return Report(title, doc_id, self.checklist.document_kind, mode, gen.describe(), findings,
                      self.settings.domain.disclaimer)

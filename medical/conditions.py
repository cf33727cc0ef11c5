"""Symptoms to possible conditions: a condition-by-symptoms corpus (MedQuAD's "What are the
symptoms of X?" answers, or the sample in samples/conditions.jsonl), patient-worded
descriptions built from it for training and for a held-out evaluation, and the chat tool
that lists possible conditions for a described set of symptoms.

Why code writes the list: the 135M model cannot rank conditions (see benchmarks/README.md,
symptoms to conditions); retrieval over the condition descriptions can, and the answer
must carry, for each, why it is listed and which sign would make it urgent."""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from shared.finetune.data import group_hash, strip_markup
from shared.ingest.importers import read_records
from shared.plugins import importer, tool_provider, training_source
from shared.store.pgvector_store import SIMILARITY_KEY
from shared.text import words_only
from shared.tools.base import ToolCall, ToolParts, ToolResult

from . import cleaning

LEXICON = Path(__file__).with_name("lay_terms.yaml")
# MedQuAD conditions whose focus hashes below this (seed 0, the hash train.yaml's split
# sends to validation first) are never trained on: they make the held-out evaluation.
HOLDOUT = 0.10
GENERIC_URGENT = "symptoms get much worse quickly, or come with trouble breathing, chest pain, confusion or fainting"
FRAMING = ("Some possibilities to discuss with a doctor or pharmacist. This is not a diagnosis: "
           "only someone who can examine you can say what it is.")
_OPENINGS = ("", "For a few weeks now ", "Lately ", "Since last month ", "Over the past few days ")
_CLOSINGS = ("", " What could it be?", " What might be causing this?", " Should I be worried?")


@dataclass(frozen=True)
class Sign:
    name: str
    pattern: re.Pattern
    lay: tuple[str, ...]


@dataclass
class Condition:
    id: str
    name: str
    text: str
    urgent: str = ""


@lru_cache(maxsize=1)
def lexicon() -> tuple[Sign, ...]:
    data = yaml.safe_load(LEXICON.read_text(encoding="utf-8"))
    return tuple(Sign(name, re.compile(v["pattern"], re.IGNORECASE), tuple(v["lay"])) for name, v in data.items())


def signs_in(text: str) -> list[str]:
    """The lexicon's signs a text names, in lexicon order."""
    return [s.name for s in lexicon() if s.pattern.search(text)]


# -- the corpus -------------------------------------------------------------------------
def _medquad_text(row: dict) -> str:
    text = strip_markup(row.get("answer") or "")
    for rule in (cleaning.strip_key_points, cleaning.rewrite_phenotype_table,
                 cleaning.strip_restated_question, cleaning.strip_navigation):
        text = rule(row.get("question") or "", text)
    return text


def conditions(path: Path) -> list[Condition]:
    """One condition per name: MedQuAD `symptoms` rows (cleaned, texts of one focus joined)
    or records with title, text and optionally urgent (the sample)."""
    by_name: dict[str, Condition] = {}
    for row in read_records(Path(path)):
        if "question_type" in row:
            if row["question_type"] != "symptoms":
                continue
            name, text, urgent = str(row.get("focus") or ""), _medquad_text(row), ""
        else:
            name, text, urgent = str(row.get("title") or ""), str(row.get("text") or ""), str(row.get("urgent") or "")
        key = words_only(name)
        if not key or not text.strip():
            continue
        if key in by_name:
            by_name[key].text += "\n\n" + text
        else:
            by_name[key] = Condition(str(row.get("id") or key), name.strip(), text, urgent)
    return list(by_name.values())


@importer("medquad_conditions")
def corpus_records(path: Path) -> Iterator[dict]:
    """The domain importer (`assistants import medical conditions FILE`): conditions as
    documents the chat tool retrieves (``category: condition``)."""
    for c in conditions(path):
        yield {"id": c.id, "title": c.name, "text": c.text, "urgent": c.urgent or GENERIC_URGENT, "category": "condition"}


def held_out(condition: Condition, medquad: bool) -> bool:
    """Never trained on: MedQuAD's focus groups below HOLDOUT; every condition of another file
    (the sample trains nothing)."""
    return not medquad or group_hash(condition.name.strip().lower(), 0) < HOLDOUT


def _is_medquad(path: Path) -> bool:
    first = next(iter(read_records(Path(path))), {})
    return "question_type" in first


# -- patient-worded descriptions ----------------------------------------------------------
def describe(condition: Condition, rng: random.Random, most: int = 3) -> str | None:
    """A first-person description from a few of the condition's signs, in the lexicon's lay
    words (never its source sentences); None when it names fewer than two signs."""
    by_name = {s.name: s for s in lexicon()}
    names = signs_in(condition.text)
    if len(names) < 2:
        return None
    chosen = rng.sample(names, min(most, len(names), rng.choice((2, 3))))
    parts = [rng.choice(by_name[n].lay) for n in chosen]
    said = ", ".join(parts[:-1]) + " and " + parts[-1]
    opening = rng.choice(_OPENINGS)
    return (opening + said if opening else said[0].upper() + said[1:]) + "." + rng.choice(_CLOSINGS)


@importer("medquad_cases")
def benchmark_records(path: Path) -> Iterator[dict]:
    """The bench importer (format `conditions`): every condition as a passage, and one
    described case per held-out condition that names at least two lexicon signs."""
    medquad = _is_medquad(path)
    for c in conditions(path):
        yield {"id": c.id, "kind": "condition", "title": c.name, "text": c.text}
        description = describe(c, random.Random(c.id)) if held_out(c, medquad) else None
        if description:
            yield {"id": f"case-{c.id}", "kind": "case", "text": description, "condition": c.name, "gold": [c.id]}


@training_source("condition_pairs")
def training_pairs(path: Path) -> Iterator[dict]:
    """Training examples (train.yaml `records`): described symptoms -> the condition, from the
    conditions that are not held out, two descriptions each."""
    medquad = _is_medquad(path)
    for c in conditions(path):
        if held_out(c, medquad):
            continue
        for i in range(2):
            description = describe(c, random.Random(f"{c.id}#{i}"))
            if description:
                yield {"question": description, "answer": answer([c], description), "focus": c.name}


# -- the answer ---------------------------------------------------------------------------
def reason(description: str, condition: Condition) -> str:
    """Why a condition is listed: the signs it shares with the description, in plain words."""
    asked = set(signs_in(description))
    shared = [s for s in signs_in(condition.text) if s in asked]
    if shared:
        return "fits " + ", ".join(shared[:3])
    usual = signs_in(condition.text)[:3]
    return "its usual signs are close to what you describe" + (f" ({', '.join(usual)})" if usual else "")


def answer(candidates: Iterable[Condition], description: str) -> str:
    lines = [FRAMING, ""]
    for i, c in enumerate(candidates, start=1):
        lines.append(f"{i}. **{c.name}**: {reason(description, c)}. Urgent if: {c.urgent or GENERIC_URGENT}.")
    return "\n".join(lines)


class PossibleConditions:
    """The chat tool: the closest conditions of the domain's corpus (records with
    ``category: condition``), listed by code."""

    name = "possible_conditions"
    description = "possible conditions for described symptoms, each with a reason and an urgent sign"

    def __init__(self, retriever: Callable[..., Any], min_relevance: float, top: int = 3):
        self.retriever, self.min_relevance, self.top = retriever, min_relevance, top

    def nearest(self, question: str, principal: str) -> list[Condition]:
        from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

        only = MetadataFilters(filters=[MetadataFilter(key="category", value="condition")])
        hits = self.retriever(principal=principal, filters=only, top_k=self.top * 2).retrieve(question)
        found: dict[str, Condition] = {}
        for h in hits:
            m = h.node.metadata
            similarity = m.get(SIMILARITY_KEY)
            doc = str(m.get("doc_id") or h.node.node_id)
            if doc in found or (similarity is not None and similarity < self.min_relevance):
                continue
            found[doc] = Condition(doc, str(m.get("title") or doc), h.node.get_content(), str(m.get("urgent") or ""))
        return list(found.values())[: self.top]

    def run(self, call: ToolCall) -> ToolResult:
        found = self.nearest(call.question, call.principal)
        if not found:
            text = ("I can't match these symptoms to conditions I know. " + FRAMING.split(". ", 1)[1] +
                    " If they are severe or getting worse, seek care now.")
            return ToolResult(self.name, "Possible conditions", text, final=True)
        return ToolResult(self.name, "Possible conditions", answer(found, call.question), final=True,
                          data={"conditions": [c.name for c in found]})


@tool_provider("medical")
def tools(parts: ToolParts) -> dict:
    """The provider named in medical/config.yaml (tools.provider)."""
    return {PossibleConditions.name: PossibleConditions(parts.retriever, parts.settings.chat.min_relevance)}

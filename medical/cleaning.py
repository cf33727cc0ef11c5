"""Cleaning rules for medical answers (MedQuAD and the like), registered in train.yaml
(`data.cleaners`). Each is ``rule(question, answer) -> answer``.

Why: about a quarter of MedQuAD answers open by restating a question ("What are the signs
and symptoms of X? ..."), CancerGov ones with a "Key Points" digest, and many carry text
that points at a web page (dictionaries, tables below, trial searches). An adapter trained
on that learns to answer with a question, or with directions to a page it cannot show."""
from __future__ import annotations

import re

from shared.plugins import cleaning_rule

# A leading sentence that asks: a question word, at most ~25 words, a question mark.
_LEADING_QUESTION = re.compile(
    r"^\s*(?:what|how|is|are|can|could|does|do|who|why|when|where|which|should|will)\b[^?.!\n]{0,200}\?[ \t]*\n?\s*",
    re.IGNORECASE)
# "Key Points" on its own line and the bullet digest right after it (repeated by the body).
_KEY_POINTS = re.compile(r"^\s*key points\s*\n(?:\s*-[^\n]*(?:\n|$))*\s*", re.IGNORECASE | re.MULTILINE)
# Sentences that direct the reader to something on the source web page, not about health.
_NAVIGATION = re.compile("|".join([
    r"\bmedlineplus medical dictionary\b",
    r"\b(?:table|list|section|links?|chart)s? (?:below|above|that follows?)\b",
    r"\bsee the [\w ,-]{1,60} section\b",
    r"\bclick (?:here|on)\b",
    r"\b(?:clinical trial|our) search\b|\brefine the search\b",
    r"\bretrieved from nci'?s? listing\b|\bavailable from the nci website\b",
    r"\b(?:visit|go to|check out) (?:the|our|this) [\w ]{0,40}(?:website|web site|page)\b",
    # The Human Phenotype Ontology's note on how frequencies are written (2,000+ GARD answers).
    r"\bhuman phenotype ontology\b|\borphanet\b",
    r"\bfrequenc(?:y|ies)\b.{0,80}\b(?:estimate|fraction|listed|study|available)\b",
    r"\bfirst number of the fraction\b|\bsign or symptom may be rare or common\b",
    r"\bfor example, a frequency of\b",
]), re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# GARD's flattened Human Phenotype Ontology table: "Term 90% Term 7.5% Term 3/10 Term - ..."
_TABLE = re.compile(r"Approximate number of patients \(when available\)\s*(.*?)\s*(?:The Human Phenotype Ontology \(HPO\)|$)",
                    re.DOTALL)
_TABLE_ROW = re.compile(r"\s*(.+?)\s+(\d+(?:\.\d+)?%|\d+/\d+|-)(?=\s|$)")
_TABLE_FOR = re.compile(r"list of signs and symptoms for (.+?)\.\s", re.IGNORECASE)


def phenotype_terms(answer: str) -> list[tuple[str, str]]:
    """(sign, frequency) rows of a GARD phenotype table ("-" where none is known); inheritance
    patterns are listed there too but are no sign anyone notices, so they are left out."""
    m = _TABLE.search(answer)
    if not m:
        return []
    rows = [(t.strip(" -"), f) for t, f in _TABLE_ROW.findall(m.group(1))]
    return [(t, f) for t, f in rows if t and "inheritance" not in t.lower()]


@cleaning_rule("rewrite_phenotype_table")
def rewrite_phenotype_table(question: str, answer: str) -> str:
    """A phenotype table (a page layout flattened into one run-on line) as a sentence."""
    terms = phenotype_terms(answer)
    if not terms:
        return answer
    named = _TABLE_FOR.search(answer)
    subject = f"Signs and symptoms of {named.group(1)}" if named else "Signs and symptoms"
    listed = ", ".join(t[0].lower() + t[1:] if t[1:2].islower() else t for t, _ in terms)
    return f"{subject} may include: {listed}."


@cleaning_rule("strip_restated_question")
def strip_restated_question(question: str, answer: str) -> str:
    """Drop questions the answer opens with (one or several in a row). An answer that is
    nothing but a question becomes empty, which the pipeline drops."""
    out = answer
    while True:
        rest = _LEADING_QUESTION.sub("", out, count=1)
        if rest == out:
            return out
        out = rest


@cleaning_rule("strip_key_points")
def strip_key_points(question: str, answer: str) -> str:
    """Drop the "Key Points" heading and its bullet digest."""
    return _KEY_POINTS.sub("", answer).strip()


@cleaning_rule("strip_navigation")
def strip_navigation(question: str, answer: str) -> str:
    """Drop the sentences that point at parts of a web page."""
    lines = []
    for line in answer.split("\n"):
        kept = [s for s in _SENTENCE_END.split(line) if not _NAVIGATION.search(s)]
        lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()

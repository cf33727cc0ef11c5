"""A domain's checklist: which clause categories a document is examined for, the yes/no
question the model answers about a candidate span, the retrieval query that finds
candidates, and the templates of the plain-language reading. Validated like the settings:
an unknown key or a bad pattern fails at start-up with its path."""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..settings import Settings, read_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Acceptance(_Strict):
    """Tells a document of the expected kind from anything else (a recipe, a photo's OCR)."""

    terms: list[str] = Field(..., min_length=1, description="Lower-case cue words or stems (`terminat` matches terminate/termination).")
    min_terms: int = Field(3, ge=1, description="Distinct cue terms a document must contain to be analysed.")

    def missing(self, text: str) -> int:
        """How many more distinct terms the text would need (0: accepted)."""
        lower = text.lower()
        found = sum(1 for t in self.terms if re.search(r"\b" + re.escape(t), lower))
        return max(0, self.min_terms - found)


class Category(_Strict):
    id: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$", description="Stable id (report anchors, metrics).")
    name: str = Field(..., description="Display name; for contracts the CUAD category name.")
    question: str = Field(..., description="Yes/no question the model answers about one candidate span.")
    query: str = Field(..., description="Retrieval query that finds candidate spans (typical wording of the clause).")
    found: str = Field(..., description="Plain-language reading when found; `{value}` is the extracted value if `value` is set.")
    missing: str = Field(..., description="Plain-language reading when the document has no such clause.")
    value: str | None = Field(None, description="Regex with a named group `value` pulled from the span (e.g. the governing law).")

    @field_validator("value")
    @classmethod
    def _value_pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            pattern = re.compile(v)
        except re.error as e:
            raise ValueError(f"not a valid regex: {e}") from None
        if "value" not in pattern.groupindex:
            raise ValueError("the regex needs a named group (?P<value>...)")
        return v

    def reading(self, span: str | None) -> str:
        if span is None:
            return self.missing
        m = re.search(self.value, span) if self.value else None
        value = m.group("value").strip(" ,.;") if m else ""
        if "{value}" in self.found and not value:
            # The clause is there but its value is not where the pattern looks: keep the
            # sentence up to the value's parenthesis or clause and point at the quote.
            head = self.found.split("{value}")[0]
            head = head[:head.rfind("(")] if "(" in head else head
            return head.rstrip(" :(,") + " (see the quoted clause)."
        return self.found.replace("{value}", value)


class Checklist(_Strict):
    document_kind: str = Field("document", description="What an accepted upload is called in messages (`contract`).")
    accept: Acceptance
    categories: list[Category] = Field(..., min_length=1)

    @field_validator("categories")
    @classmethod
    def _unique(cls, v: list[Category]) -> list[Category]:
        ids = [c.id for c in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate category ids: {', '.join(dup)}")
        return v

    def category(self, id_: str) -> Category:
        for c in self.categories:
            if c.id == id_:
                return c
        raise KeyError(id_)

    @classmethod
    def load(cls, path: Path) -> "Checklist":
        return read_model(path, cls, "checklist")

    @classmethod
    def for_settings(cls, settings: Settings) -> "Checklist | None":
        name = settings.analysis.checklist
        if not name:
            return None
        return cls.load(Path(settings.domain.root or ".") / name)

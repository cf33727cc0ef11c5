"""Deterministic safety rules that a domain declares in a YAML file (``chat.rules``). They
are checked before the model runs, so their outcome never depends on what the model says.

- ``escalate``: the rule's message comes first (e.g. "call emergency services now"), then
  the usual answer follows. Its ``id`` is a category (``cardiac``, ``poisoning``): several
  rules may share one, each a different presentation of the same emergency, and the
  category's message (``messages``) names the right action for it.
- ``decline``: the message is the whole answer (e.g. no prescription dosing).
- ``reply``: the message is the whole answer, and not a refusal: a fixed, honest reply to a
  message with nothing to answer ("hello", "what can you do?"), where a small model invents.
- ``clarify``: a question back when a description is too thin to say anything useful;
  asked at most once per conversation.

A rule fires when every pattern in ``all`` matches somewhere that is not negated ("no
chest pain", "I don't have a fever") and no pattern in ``unless`` matches. Patterns are
matched against a normalised text (``Normaliser``: contractions spelled out, misspellings
of the file's ``vocabulary`` corrected) and may name the file's ``terms`` as ``{NAME}``, so
one clinical concept (what counts as "the chest", as "sweating") is written once.

A file may add a ``classifier`` (``triage.py``): a model over sentence embeddings that
escalates phrasings no rule names. Both layers run; either one escalates."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..settings import ConfigError, EmbeddingSettings, read_model, regexes
from .spelling import Normaliser
from .triage import VETO_MIN_WORDS, ClassifierSpec, RedFlagClassifier

# A negation cue up to two words before a match, in the same clause; or one that opens a
# list the match ends ("no fever, cough or chest pain", "do not have any trouble breathing or
# chest pain").
_NEGATED = re.compile(r"\b(no|not|without|denies|deny|no longer|nor)\b(\W+\w+){0,2}\W*$"
                      r"|\b(no|not|without|denies|deny|never)\b(\W+\w+){0,5}\W+or\W*$", re.I)
_CLAUSE = re.compile(r"[.;!?]|\bbut\b|\bthough\b|\bnow\b", re.I)
_TERM = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=r"^[a-z0-9_-]+$",
                    description="Stable name, recorded with the answer; for escalations, the category.")
    kind: Literal["escalate", "decline", "reply", "clarify"]
    all: list[str] = Field(..., min_length=1, description="Regexes (case-insensitive) that must all match.")
    unless: list[str] = Field(default_factory=list, description="Regexes that keep the rule quiet.")
    max_words: int | None = Field(None, ge=1, description="Fires only on messages of at most this many words.")
    message: str = Field("", description="What the assistant says when the rule fires; an escalation "
                                         "without one says its category's message.")

    _compiles = field_validator("all", "unless")(regexes)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terms: dict[str, str] = Field(default_factory=dict, description="Named sub-patterns, used as {NAME} in rules.")
    vocabulary: list[str] = Field(default_factory=list,
                                  description="Words whose misspellings are corrected before matching.")
    messages: dict[str, str] = Field(default_factory=dict, description="Escalation message per category.")
    rules: list[Rule]
    classifier: ClassifierSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _expand_terms(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("terms"), dict):
            return data
        terms = data["terms"]
        for part in [*(data.get("rules") or []), data.get("classifier")]:
            for key in ("all", "unless"):
                if isinstance(part, dict) and isinstance(part.get(key), list):
                    part[key] = [expand(p, terms) if isinstance(p, str) else p for p in part[key]]
        return data

    @model_validator(mode="after")
    def _messages(self) -> RuleFile:
        for rule in self.rules:
            if not rule.message:
                if rule.kind != "escalate" or rule.id not in self.messages:
                    raise ValueError(f"rule {rule.id!r} has no message (an escalation may take its "
                                     f"category's from `messages`)")
                rule.message = self.messages[rule.id]
        return self


def expand(pattern: str, terms: dict[str, str]) -> str:
    """``{CHEST}`` -> ``(?:chest|breastbone|...)``; an unknown name is an error, not a literal."""
    def term(m: re.Match) -> str:
        if m.group(1) not in terms:
            raise ValueError(f"pattern {pattern!r} names an unknown term {{{m.group(1)}}}")
        return f"(?:{expand(terms[m.group(1)], terms)})"
    return _TERM.sub(term, pattern)


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
    final: Rule | None = None  # decline, reply or clarify: said instead of the model's answer
    layers: dict[str, str] = field(default_factory=dict)  # category -> "rules" | "classifier" | "both"
    vetoed: list[str] = field(default_factory=list)  # categories a rule found and the classifier overruled

    @property
    def preface(self) -> str:
        return "\n\n".join(r.message for r in self.escalations)

    @property
    def fired(self) -> list[str]:
        return [r.id for r in self.escalations] + ([self.final.id] if self.final else [])

    def withdraw(self, rule: Rule) -> None:
        """A rule's escalation overruled by the classifier; kept in ``vetoed`` for the record."""
        self.escalations.remove(rule)
        del self.layers[rule.id]
        self.vetoed.append(rule.id)

    def escalate(self, rule: Rule, layer: str) -> None:
        """One message per category, however many rules and layers found it."""
        if rule.id not in self.layers:
            self.escalations.append(rule)
            self.layers[rule.id] = layer
        elif self.layers[rule.id] != layer:
            self.layers[rule.id] = "both"


class SafetyRules:
    def __init__(self, rules: Sequence[Rule] = (), normalise: Callable[[str], str] = str,
                 classifier: RedFlagClassifier | None = None, messages: dict[str, str] | None = None,
                 classifier_unless: Sequence[str] = (), veto: float | None = None, veto_exempt: Sequence[str] = (),
                 veto_min_words: int = VETO_MIN_WORDS):
        """``veto``: P(benign) at or above which the classifier withdraws a rule's escalation,
        except in the ``veto_exempt`` categories and in conversations under ``veto_min_words`` words."""
        self.rules = list(rules)
        self.veto, self.veto_exempt, self.veto_min_words = veto, set(veto_exempt), veto_min_words
        self.normalise = normalise
        self.classifier = classifier
        self.messages = messages or {}
        self.classifier_unless = list(classifier_unless)

    @classmethod
    def load(cls, path: Path, embed=None, cache_dir: Path | None = None, model_id: str = "") -> SafetyRules:
        """With ``embed`` (texts -> normalised vectors, of the embedding model ``model_id``),
        the file's classifier layer is built too (the shipped fit, or fitted once on its bank
        and cached under ``cache_dir``)."""
        spec = read_model(path, RuleFile, "safety rules")
        classifier = None
        if spec.classifier is not None and embed is not None:
            classifier = RedFlagClassifier.from_bank(spec.classifier, Path(path).parent, embed, cache_dir, model_id)
            classifier.require_messages(spec.messages)
        c = spec.classifier
        return cls(spec.rules, Normaliser(spec.vocabulary), classifier, spec.messages, c.unless if c else [],
                   c.veto if c else None, c.veto_exempt if c else [], c.veto_min_words if c else VETO_MIN_WORDS)

    @classmethod
    def for_settings(cls, settings, embed=None) -> SafetyRules:
        name = settings.chat.rules
        if not name:
            return cls()
        return cls.load(Path(settings.domain.root or ".") / name, embed, Path(settings.state_dir) / "triage",
                        settings.embedding.model)

    def check(self, question: str, history: Sequence[dict] = ()) -> Verdict:
        """``history`` is the conversation so far as chat messages. A red flag told in parts
        ("chest pain" ... "now I can't breathe") escalates when the part that completes it
        arrives; a clarifying question is not asked twice."""
        text = self.normalise(question)
        earlier = self.normalise("\n".join(m["content"] for m in history if m["role"] == "user"))
        asked = {m["content"] for m in history if m["role"] == "assistant"}
        verdict = Verdict()
        for rule in self.rules:
            if rule.kind == "escalate":
                if _completes(lambda t: _fires(rule, t), text, earlier):
                    verdict.escalate(rule, "rules")
            elif verdict.final is None and _fires(rule, text):
                if rule.kind == "clarify" and any(rule.message in a for a in asked):
                    continue
                verdict.final = rule
        if self.classifier is not None:
            self._classify(question, history, verdict, quiet=self._quiet(text))
        if verdict.escalations and verdict.final is not None and verdict.final.kind == "clarify":
            verdict.final = None  # an emergency is never met with "tell me more" first
        return verdict

    def _classify(self, question: str, history: Sequence[dict], verdict: Verdict, quiet: bool) -> None:
        # The classifier reads the raw words: its embedding model has seen misspellings.
        # One embedding call for the message, the message with what came before, and that alone.
        earlier = "\n".join([m["content"] for m in history if m["role"] == "user"][-2:])
        texts = [question, f"{earlier}\n{question}", earlier] if earlier else [question]
        probabilities = self.classifier.probabilities(texts)
        self._veto(verdict, probabilities[:2, self.classifier.benign], len(f"{earlier} {question}".split()))
        if quiet:
            return
        categories = self.classifier.categories(texts, probabilities=probabilities)
        found = categories[0] or (categories[1] if earlier and not categories[2] else None)
        if found is not None:
            verdict.escalate(Rule(id=found, kind="escalate", all=[".*"], message=self.messages[found]), "classifier")

    def _veto(self, verdict: Verdict, p_benign, words: int) -> None:
        """A rule's escalation is dropped when the classifier is near-certain the message,
        alone and with what came before, is benign - never in the categories where a person
        can look fine and still be in danger, and never on a terse conversation ("ok, my face
        is drooping"): ``words``, the message's with what came before, are too few to hold the
        context that makes a named sign harmless, and greetings pull the classifier to benign."""
        if self.veto is None or words < self.veto_min_words or min(p_benign) < self.veto:
            return
        for rule in [r for r in verdict.escalations if r.id not in self.veto_exempt]:
            verdict.withdraw(rule)

    def _quiet(self, text: str) -> bool:
        """``text`` normalised: a topic question or a story about the past keeps the classifier quiet."""
        return any(re.search(p, text, re.I) for p in self.classifier_unless)


def _completes(fires: Callable[[str], bool], text: str, earlier: str) -> bool:
    """The message itself is a red flag, or it completes one that the earlier messages
    alone were not (so a completed red flag is not re-announced on every later message)."""
    if fires(text):
        return True
    return bool(earlier) and fires(f"{earlier}\n{text}") and not fires(earlier)


def ship_fit(path: Path, model: str) -> Path:
    """Fits the classifier of the rules file ``path`` with the embedding model ``model`` and
    writes it where ``RedFlagClassifier.from_bank`` looks first (``fitted/`` beside the rules
    file), removing fits of earlier banks: run after changing a bank or the classifier
    section, and commit the file (``scripts/ship_triage_fit.py``)."""
    from ..embedding import SentenceEmbedding  # only here: loading rules needs no embedding model
    from .triage import SHIPPED

    spec = read_model(path, RuleFile, "safety rules").classifier
    if spec is None:
        raise ConfigError(f"{path} has no classifier section")
    folder = Path(path).parent
    out = folder / SHIPPED / f"{RedFlagClassifier.key(spec, folder, model)}.npz"
    for old in (folder / SHIPPED).glob("*.npz"):
        old.unlink()
    embed = SentenceEmbedding(EmbeddingSettings(model=model)).embed
    RedFlagClassifier.from_bank(spec, folder, embed, None, model).save(out)
    return out

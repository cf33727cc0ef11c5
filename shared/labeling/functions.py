"""Labeling functions: small rules that vote a label for an unlabeled text, or abstain.

Programmatic labeling turns many cheap, noisy rules into training labels: each rule is a
``LabelingFunction``, a domain's rules form a ``LabelingSet``, and ``LabelingSet.apply``
gives the vote matrix a label model (``model.py``) combines. Keyword and regex rules are
declared in the domain's YAML; rules that need code (a heuristic, an embedding, a model's
scores) name a function a domain's plugin module registers as a ``labeling function``
(shared/plugins.py), so the YAML holds data and config only.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import plugins

ABSTAIN = -1
KINDS = ("keyword", "regex", "heuristic", "similarity", "model")

Embed = Callable[[list[str]], np.ndarray]
"""Texts -> one L2-normalised vector a row (``SentenceEmbedding.embed`` is one)."""
Scorer = Callable[[str], Mapping[str, float]]
"""A text -> a probability per label name (e.g. a generator's choice probabilities)."""


class LabelingError(ValueError):
    """A labeling function or its spec is unusable; the message names the function."""


@dataclass(frozen=True)
class LabelingFunction:
    """One rule: ``vote(text)`` is a label index or ``ABSTAIN``.

    ``label`` is the one label the rule can vote, or None for a rule that may vote any
    (a model); ``batch`` votes many texts in one call where that is cheaper than one call
    a text (an embedding model)."""

    name: str
    vote: Callable[[str], int]
    kind: str
    label: int | None = None
    batch: Callable[[list[str]], Sequence[int]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise LabelingError(f"a labeling function needs a name, got {self.name!r}")
        if self.kind not in KINDS:
            raise LabelingError(f"{self.name}: unknown kind {self.kind!r}; one of {', '.join(KINDS)}")

    def __call__(self, text: str) -> int:
        return int(self.vote(text))

    def apply(self, texts: Sequence[str]) -> np.ndarray:
        """The votes for ``texts``, an int vector."""
        texts = list(texts)
        if not texts:
            return np.empty(0, dtype=int)
        votes = self.batch(texts) if self.batch is not None else [self.vote(t) for t in texts]
        try:
            return np.asarray(votes, dtype=int).reshape(len(texts))
        except (TypeError, ValueError):
            raise LabelingError(f"{self.name}: votes must be one label index or ABSTAIN a text") from None


def _when(name: str, kind: str, label: int, test: Callable[[str], Any]) -> LabelingFunction:
    """A rule that votes ``label`` where ``test(text)`` holds and abstains elsewhere."""
    return LabelingFunction(name, lambda text: label if test(text) else ABSTAIN, kind, label)


def keyword_lf(name: str, label: int, words: Sequence[str]) -> LabelingFunction:
    """Votes ``label`` where any of ``words`` occurs as a whole word, in any case. A phrase
    matches across any run of whitespace."""
    words = [w for w in words if isinstance(w, str) and w.strip()]
    if not words:
        raise LabelingError(f"{name}: no keywords")
    # Lookarounds rather than \b: \b needs a word character at each end, so "c++" or
    # "401(k)" would never match as a whole word. Longest first so a phrase wins over its
    # own first word.
    alternatives = (r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True))
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    return _when(name, "keyword", label, pattern.search)


def regex_lf(name: str, label: int, pattern: str) -> LabelingFunction:
    """Votes ``label`` where ``pattern`` matches anywhere (``re.search``; case-sensitive
    unless the pattern says ``(?i)``)."""
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as e:
        raise LabelingError(f"{name}: bad regex {pattern!r}: {e}") from None
    return _when(name, "regex", label, compiled.search)


def heuristic_lf(name: str, label: int, predicate: Callable[[str], bool]) -> LabelingFunction:
    """Votes ``label`` where ``predicate(text)`` is true."""
    return _when(name, "heuristic", label, predicate)


def similarity_lf(name: str, label: int, embed: Embed, prototypes: Sequence[str],
                  threshold: float) -> LabelingFunction:
    """Votes ``label`` where a text's cosine similarity to its nearest prototype is at least
    ``threshold``; ``embed`` must return normalised rows, so a dot product is the cosine."""
    prototypes = list(prototypes)
    if not prototypes:
        raise LabelingError(f"{name}: no prototypes")

    @cache
    def anchors() -> np.ndarray:
        # Embedded on first use, not when the set is loaded: loading a domain's rules
        # should not cost a model call.
        return np.asarray(embed(prototypes), dtype=np.float32)

    def batch(texts: list[str]) -> np.ndarray:
        nearest = (np.asarray(embed(texts), dtype=np.float32) @ anchors().T).max(axis=1)
        return np.where(nearest >= threshold, label, ABSTAIN)

    return LabelingFunction(name, lambda text: int(batch([text])[0]), "similarity", label, batch)


def model_lf(name: str, label_of: Mapping[str, int], scorer: Scorer, threshold: float) -> LabelingFunction:
    """Votes the scorer's most probable label where its probability is at least
    ``threshold``; ``label_of`` maps the scorer's label names to indices, and a top choice
    outside it (an "other") is an abstention, not a vote."""

    def vote(text: str) -> int:
        scores = scorer(text)
        if not scores:
            return ABSTAIN
        best = max(scores, key=scores.__getitem__)
        return label_of[best] if best in label_of and scores[best] >= threshold else ABSTAIN

    return LabelingFunction(name, vote, "model")


@dataclass
class LabelingSet:
    """A domain's label names and its labeling functions, in a fixed order: column ``j``
    of the vote matrix is ``functions[j]``."""

    labels: list[str]
    functions: list[LabelingFunction]

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            raise LabelingError(f"labels must be two or more distinct names, got {self.labels!r}")
        seen: set[str] = set()
        for fn in self.functions:
            if fn.name in seen:
                raise LabelingError(f"{fn.name}: two labeling functions share this name")
            seen.add(fn.name)
            if fn.label is not None and not 0 <= fn.label < len(self.labels):
                raise LabelingError(f"{fn.name}: label index {fn.label} is not one of 0..{len(self.labels) - 1}")

    @property
    def names(self) -> list[str]:
        return [fn.name for fn in self.functions]

    def apply(self, texts: Sequence[str]) -> np.ndarray:
        """The vote matrix: one row a text, one column a function, ``ABSTAIN`` = -1."""
        texts = list(texts)
        L = np.full((len(texts), len(self.functions)), ABSTAIN, dtype=int)
        for j, fn in enumerate(self.functions):
            votes = fn.apply(texts)
            bad = votes[(votes < ABSTAIN) | (votes >= len(self.labels))]
            if bad.size:
                raise LabelingError(f"{fn.name}: voted {int(bad[0])}, not a label index "
                                    f"0..{len(self.labels) - 1} or ABSTAIN")
            L[:, j] = votes
        return L


# What each kind of YAML entry needs and may have, besides ``name`` and ``kind``.
_REQUIRED = {"keyword": ("label", "words"), "regex": ("label", "pattern"), "heuristic": ("label", "function"),
             "similarity": ("label", "prototypes", "threshold"), "model": ("scorer", "threshold")}
_OPTIONAL = {"similarity": ("embed",)}


def load_labeling_set(spec: Mapping[str, Any], *, embed: Embed | None = None) -> LabelingSet:
    """A ``LabelingSet`` from a YAML-able dict::

        labels: [complaint, question, other]
        functions:
          - {name: refund_words, kind: keyword, label: complaint, words: [refund, chargeback]}
          - {name: asks, kind: regex, label: question, pattern: '\\?\\s*$'}
          - {name: long_rant, kind: heuristic, label: complaint, function: is_rant}
          - {name: near_fraud, kind: similarity, label: complaint, prototypes: [...], threshold: 0.6}
          - {name: llm, kind: model, scorer: choice_probs, threshold: 0.7}

    ``function``, ``scorer`` and ``embed`` name registered labeling functions
    (``@labeling_function("is_rant")``, shared/plugins.py). A similarity entry embeds with
    its ``embed`` reference, else with the ``embed`` given here (the suite's sentence
    embedding is an object, not a module function). Every
    mistake raises ``LabelingError`` naming the function."""
    if not isinstance(spec, Mapping):
        raise LabelingError(f"a labeling spec is a mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"labels", "functions"}
    if unknown:
        raise LabelingError(f"unknown keys in the labeling spec: {', '.join(sorted(map(str, unknown)))}")
    labels, entries = spec.get("labels"), spec.get("functions")
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise LabelingError("labels must be a list of label names")
    if not isinstance(entries, list) or not entries:
        raise LabelingError("functions must be a non-empty list")
    index = {label: i for i, label in enumerate(labels)}
    return LabelingSet(list(labels), [_build(entry, n, index, embed) for n, entry in enumerate(entries, start=1)])


def read_spec_file(path: Path) -> dict:
    """A labeling spec file's mapping; a file that is not YAML, or not a mapping, is a
    ``LabelingError`` naming it."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise LabelingError(f"{path}: {e}") from None
    if not isinstance(spec, dict):
        raise LabelingError(f"{path.name}: a labeling spec is a mapping")
    return spec


def read_labeling_set(path: Path, *, embed: Embed | None = None) -> LabelingSet:
    """``load_labeling_set`` on a YAML file."""
    spec = read_spec_file(path)
    try:
        return load_labeling_set(spec, embed=embed)
    except LabelingError as e:
        raise LabelingError(f"{Path(path).name}: {e}") from None


def _build(entry: Any, n: int, index: dict[str, int], embed: Embed | None) -> LabelingFunction:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise LabelingError(f"function #{n} needs a mapping with a name")
    name, kind = entry["name"], entry.get("kind")
    if kind not in KINDS:
        raise LabelingError(f"{name}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    missing = [key for key in _REQUIRED[kind] if key not in entry]
    if missing:
        raise LabelingError(f"{name}: a {kind} function needs {', '.join(missing)}")
    unknown = set(entry) - {"name", "kind", *_REQUIRED[kind], *_OPTIONAL.get(kind, ())}
    if unknown:
        raise LabelingError(f"{name}: unknown keys for a {kind} function: {', '.join(sorted(map(str, unknown)))}")
    if kind == "model":
        return model_lf(name, index, _reference(name, entry, "scorer"), _number(name, entry, 0.0, 1.0))
    label = entry["label"]
    if not isinstance(label, str) or label not in index:
        raise LabelingError(f"{name}: unknown label {label!r}; one of {', '.join(index)}")
    if kind == "keyword":
        return keyword_lf(name, index[label], _strings(name, entry, "words"))
    if kind == "regex":
        return regex_lf(name, index[label], entry["pattern"])
    if kind == "heuristic":
        return heuristic_lf(name, index[label], _reference(name, entry, "function"))
    if "embed" in entry:
        embed = _reference(name, entry, "embed")
    if embed is None:
        raise LabelingError(f"{name}: a similarity function needs an embed reference or an embedding to load with")
    prototypes = _strings(name, entry, "prototypes")
    return similarity_lf(name, index[label], embed, prototypes, _number(name, entry, -1.0, 1.0))


def _reference(name: str, entry: Mapping[str, Any], key: str, kind: str = plugins.LABELING_FUNCTION) -> Callable:
    """The plugin of ``kind`` that ``entry[key]`` names."""
    ref = entry[key]
    if not isinstance(ref, str) or not ref:
        raise LabelingError(f"{name}: {key} must name a registered {kind}, got {ref!r}")
    try:
        return plugins.lookup(kind, ref)
    except plugins.PluginError as e:
        raise LabelingError(f"{name}: {key}: {e}") from None


def _strings(name: str, entry: Mapping[str, Any], key: str) -> list[str]:
    value = entry[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise LabelingError(f"{name}: {key} must be a non-empty list of non-empty strings")
    return value


def _number(name: str, entry: Mapping[str, Any], low: float, high: float) -> float:
    value = entry["threshold"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise LabelingError(f"{name}: threshold must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)

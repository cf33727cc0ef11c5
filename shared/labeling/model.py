"""Label models: one label (and a distribution over labels) an item from a vote matrix.

``MajorityVote`` is the baseline: every vote counts the same. ``AccuracyWeighted`` learns,
without gold labels, how far to trust each function from how it agrees with the others:
a Dawid–Skene model fitted by EM, in which every function, given an item's true label,
abstains or votes each label with its own probabilities, independently of the other
functions. A vote for label v then adds log P(v | true label k) to label k's score, so one
accurate function outweighs several near-chance ones.

Why not the simpler one-coin model (one accuracy a function, abstentions ignored): most
rules here vote one label or abstain (a keyword, a regex), and for such rules the votes
alone fit "everything is the majority's label, the other rules are always wrong" as well
as the truth; EM runs off to it. Abstaining is evidence too (a rule that fires on half of
all refund requests and stays silent says "probably not a refund request"), and counting
it makes the model identifiable. Functions that copy each other's mistakes break the
independence and are trusted more than they deserve: a few near-duplicates are
tolerated, a bloc of them is not.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .functions import ABSTAIN

TIE_BREAKS = ("abstain", "lowest", "random")


class LabelModel(Protocol):
    """What ``label_model_report`` needs of a label model."""

    def fit(self, L: np.ndarray) -> LabelModel: ...

    def predict_proba(self, L: np.ndarray) -> np.ndarray: ...

    def predict(self, L: np.ndarray) -> np.ndarray: ...


def as_votes(L: np.ndarray, cardinality: int | None = None) -> np.ndarray:
    """``L`` checked as a vote matrix: 2-d (items × functions), integer, every entry
    ``ABSTAIN`` or a label index below ``cardinality``."""
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"a vote matrix is 2-d (items × functions), got shape {L.shape}")
    if L.size and not np.issubdtype(L.dtype, np.integer):
        raise ValueError(f"votes are integers, got {L.dtype}")
    if L.min(initial=ABSTAIN) < ABSTAIN or (cardinality is not None and L.max(initial=ABSTAIN) >= cardinality):
        raise ValueError(f"votes must be ABSTAIN ({ABSTAIN}) or a label index"
                         + (f" below {cardinality}" if cardinality is not None else ""))
    return L.astype(int, copy=False)


def _counts(L: np.ndarray, cardinality: int) -> np.ndarray:
    """n × K: how many functions vote each label for each item."""
    counts = np.zeros((L.shape[0], cardinality))
    rows, cols = np.nonzero(L != ABSTAIN)
    np.add.at(counts, (rows, L[rows, cols]), 1)
    return counts


@dataclass
class _LabelModel(ABC):
    """What label models share: the number of labels, ``K``, and ``predict``."""

    cardinality: int

    def __post_init__(self) -> None:
        if self.cardinality < 2:
            raise ValueError(f"a label model needs two or more labels, got {self.cardinality}")

    def predict(self, L: np.ndarray) -> np.ndarray:
        """One label an item; ``ABSTAIN`` where no function voted."""
        L = as_votes(L, self.cardinality)
        labels = self._choose(L)
        labels[(L == ABSTAIN).all(axis=1)] = ABSTAIN
        return labels

    def _choose(self, L: np.ndarray) -> np.ndarray:
        return self.predict_proba(L).argmax(axis=1)

    @abstractmethod
    def fit(self, L: np.ndarray) -> _LabelModel: ...

    @abstractmethod
    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """n × K: a distribution over labels for each item."""


@dataclass
class MajorityVote(_LabelModel):
    """Every vote counts the same. A tie is broken by ``tie_break``: "abstain" (no label),
    "lowest" (the lowest tied label index) or "random" (one of the tied, drawn with
    ``seed``)."""

    tie_break: str = "abstain"
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tie_break not in TIE_BREAKS:
            raise ValueError(f"tie_break must be one of {', '.join(TIE_BREAKS)}, got {self.tie_break!r}")

    def fit(self, L: np.ndarray) -> MajorityVote:
        """Nothing to learn; checks ``L`` so every label model is used alike."""
        as_votes(L, self.cardinality)
        return self

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """The share of an item's votes for each label; uniform where nobody voted."""
        L = as_votes(L, self.cardinality)
        counts = _counts(L, self.cardinality)
        totals = counts.sum(axis=1, keepdims=True)
        return np.where(totals > 0, counts / np.maximum(totals, 1), 1 / self.cardinality)

    def _choose(self, L: np.ndarray) -> np.ndarray:
        counts = _counts(L, self.cardinality)
        tied = counts == counts.max(axis=1, keepdims=True)
        if self.tie_break == "random":
            # A uniform draw over the tied labels only: the others score 0.
            return (tied * np.random.default_rng(self.seed).random(counts.shape)).argmax(axis=1)
        labels = counts.argmax(axis=1)
        if self.tie_break == "abstain":
            labels[tied.sum(axis=1) > 1] = ABSTAIN
        return labels


@dataclass
class AccuracyWeighted(_LabelModel):
    """Votes weighted by how often each function is right, estimated from agreements by EM.

    Starts from majority vote's soft labels, then alternates: the class prior is the mean
    soft label, each function's table of P(abstain or vote v | true label k) is its
    soft-label-weighted counts (``smoothing`` added to every cell, so no outcome is ever
    impossible), and the soft labels are the posterior under those. Stops when no table
    entry moves by ``tol`` or after ``max_iter`` rounds.

    What to fit on: where the functions cover most of the pool, all of it (an item nobody
    voted on still tells each function's abstention rate). Where most items get no vote at
    all (contract passages: most say nothing any rule knows), fit on the voted items: that
    silent mass would make one label's abstentions look certain, and EM pulls every item
    into that label. ``shared.labeling.pipeline`` does the latter.

    ``smoothing`` is small because the tables are large: K × (K + 1) cells a function, and
    a pseudo-count of 1 each, over a dozen labels with a few dozen items each, outweighs
    the evidence and collapses every item into the largest label (seen on CUAD passages)."""

    max_iter: int = 200
    tol: float = 1e-5
    smoothing: float = 0.01
    _tables: np.ndarray | None = field(default=None, init=False, repr=False)  # m × K × (K+1); column 0 is abstain
    _prior: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def accuracies(self) -> np.ndarray:
        """Each function's estimated accuracy, in column order: the probability that a vote
        of its is the true label (chance, 1/K, for a function that never voted)."""
        tables, prior = self._fitted()
        votes = tables[:, :, 1:]  # P(vote v | true label k)
        return np.einsum("k,jkk->j", prior, votes) / np.einsum("k,jkv->j", prior, votes)

    @property
    def prior(self) -> np.ndarray:
        """The estimated share of each label."""
        return self._fitted()[1]

    def fit(self, L: np.ndarray) -> AccuracyWeighted:
        L = as_votes(L, self.cardinality)
        soft = MajorityVote(self.cardinality).predict_proba(L)
        self._tables = None
        for _ in range(self.max_iter):
            previous = self._tables
            self._estimate(L, soft)
            soft = self.predict_proba(L)
            if previous is not None and np.abs(self._tables - previous).max(initial=0) < self.tol:
                break
        return self

    def predict_proba(self, L: np.ndarray) -> np.ndarray:
        """The posterior over labels for each item (where nobody voted, what the
        abstentions alone say)."""
        tables, prior = self._fitted()
        L = as_votes(L, self.cardinality)
        if L.shape[1] != len(tables):
            raise ValueError(f"fitted on {len(tables)} functions, given {L.shape[1]}")
        scores = np.tile(np.log(prior), (L.shape[0], 1))
        for table, outputs in zip(np.log(tables), L.T + 1):
            scores += table[:, outputs].T
        proba = np.exp(scores - scores.max(axis=1, keepdims=True))
        return proba / proba.sum(axis=1, keepdims=True)

    def _estimate(self, L: np.ndarray, soft: np.ndarray) -> None:
        k, s = self.cardinality, self.smoothing
        self._prior = (soft.sum(axis=0) + s) / (len(soft) + k * s)
        tables = np.empty((L.shape[1], k, k + 1))
        one_hot = np.eye(k + 1)
        for j, outputs in enumerate(L.T + 1):  # one function at a time: memory stays n × K
            counts = soft.T @ one_hot[outputs] + s
            tables[j] = counts / counts.sum(axis=1, keepdims=True)
        self._tables = tables

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self._tables is None or self._prior is None:
            raise RuntimeError("AccuracyWeighted is not fitted: call fit(L) first")
        return self._tables, self._prior

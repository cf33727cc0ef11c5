"""The semantic layer of red-flag triage: a multinomial logistic regression over sentence
embeddings, trained on a domain's bank of labeled messages (each an emergency category or
benign). Rules catch the phrasings someone wrote down; this catches the ones nobody did
("my dad's words are coming out wrong"), because similar situations embed close together.
With a ``tune`` section the embedding model is first tuned to the bank (a LoRA adapter,
``encoder_tuning``), which separates near-misses from the emergencies they resemble.

A message escalates when the probability of ``benign`` falls below the threshold, and
its category is the likeliest emergency one. The fitted weights (and the adapter) are
keyed by the bank's content, the classifier section and the embedding model: a domain
ships the fit of its own bank (``fitted/KEY.npz`` beside the rules file, written by
``scripts/ship_triage_fit.py``), so a first start neither embeds thousands of messages nor
tunes an encoder; any other combination (a new bank, another embedding model) is fitted
once, with progress in the log, and cached under the state dir."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..settings import ConfigError, regexes
from .encoder_tuning import PREFIX, Progress, TunedEncoder, TuneSpec, tune_encoder

Embed = Callable[[list[str]], np.ndarray]
log = logging.getLogger(__name__)
SHIPPED = "fitted"  # beside the rules file: the fit a domain ships for its own bank and default embedding model
FIT_FIELDS = {"bank", "benign", "regularisation", "tune"}  # the classifier section's fields the weights depend on
VETO_MIN_WORDS = 8


class ClassifierSpec(BaseModel):
    """The ``classifier`` section of a safety-rules file."""

    model_config = ConfigDict(extra="forbid")

    bank: list[str] = Field(..., min_length=1,
                            description="JSONL files of {text, label} beside the rule file: the training bank.")
    benign: str = Field("benign", description="The bank's label for messages that need no escalation.")
    threshold: float = Field(0.5, gt=0, lt=1, description="A message escalates when P(benign) is below this.")
    regularisation: float = Field(4.0, gt=0, description="Inverse L2 penalty strength (scikit-learn's C).")
    unless: list[str] = Field(default_factory=list,
                              description="Regexes (on the normalised text) under which the classifier stays quiet: "
                                          "a question about a topic, a story about the past.")
    veto: float | None = Field(None, gt=0.5, lt=1, description="A rule's escalation is withdrawn when P(benign) is at "
                                                               "least this, for the message alone and with its history.")
    veto_exempt: list[str] = Field(default_factory=list,
                                   description="Categories whose rules the classifier never overrules.")
    veto_min_words: int = Field(VETO_MIN_WORDS, ge=1,
                                description="A message that, with the earlier ones, has fewer words than this is never "
                                            "vetoed: too few to hold the context that makes a named sign harmless.")
    tune: TuneSpec | None = Field(None, description="Tune the embedding model to the bank (a LoRA adapter) before the "
                                                    "regression; without it the regression reads the frozen embeddings.")

    _compiles = field_validator("unless")(regexes)


def read_bank(*paths: Path) -> tuple[list[str], list[str]]:
    """Texts and labels of JSONL banks; a bad line is named."""
    texts, labels = [], []
    for path in paths:
        _read_lines(Path(path), texts, labels)
    return texts, labels


def _read_lines(path: Path, texts: list[str], labels: list[str]) -> None:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row["text"]))
            labels.append(str(row["label"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"{path}:{n}: a bank line needs JSON with 'text' and 'label' ({e})") from None


class RedFlagClassifier:
    def __init__(self, embed: Embed, labels: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                 benign: str, threshold: float, adapter: dict[str, np.ndarray] | None = None):
        """``adapter``: the tuned encoder's weights when ``embed`` is one (saved with the fit)."""
        if benign not in labels:
            raise ConfigError(f"the triage bank has no {benign!r} examples")
        self.embed, self.labels, self.adapter = embed, list(labels), adapter or {}
        self.coef, self.intercept = coef, intercept
        self.benign, self.threshold = self.labels.index(benign), threshold

    @classmethod
    def fit(cls, embed: Embed, texts: Sequence[str], labels: Sequence[str], benign: str = "benign",
            threshold: float = 0.5, regularisation: float = 4.0, vectors: np.ndarray | None = None,
            adapter: dict[str, np.ndarray] | None = None) -> RedFlagClassifier:
        """``vectors``: the texts' embeddings when the caller has them already; ``adapter``:
        the weights of the tuned encoder ``embed`` is."""
        from sklearn.linear_model import LogisticRegression

        x = embed(list(texts)) if vectors is None else vectors
        model = LogisticRegression(C=regularisation, max_iter=2000).fit(x, list(labels))
        return cls(embed, [str(c) for c in model.classes_], model.coef_, model.intercept_, benign, threshold, adapter)

    @classmethod
    def fit_tuned(cls, spec: ClassifierSpec, model_path: str, texts: Sequence[str], labels: Sequence[str],
                  progress: Progress | None = None) -> RedFlagClassifier:
        """The encoder tuned to the bank (``spec.tune``), then the regression over its vectors."""
        adapter = tune_encoder(model_path, texts, labels, spec.tune, progress)
        encoder = TunedEncoder(model_path, adapter, spec.tune)
        return cls.fit(encoder, texts, labels, spec.benign, spec.threshold, spec.regularisation, adapter=adapter)

    @staticmethod
    def bank_files(spec: ClassifierSpec, folder: Path) -> list[Path]:
        paths = [Path(folder) / name for name in spec.bank]
        for path in paths:
            if not path.is_file():
                raise ConfigError(f"triage classifier bank {path} not found")
        return paths

    @classmethod
    def key(cls, spec: ClassifierSpec, folder: Path, model_id: str) -> str:
        """What a fit depends on: the bank files' bytes, the fields of the classifier section
        that change the weights, and the embedding model (another model's vectors need other
        weights). The threshold, veto and ``unless`` are read at serving time: changing them
        needs no refit."""
        raw = b"".join(path.read_bytes() for path in cls.bank_files(spec, folder))
        fitted = spec.model_dump_json(include=FIT_FIELDS).encode()
        return hashlib.sha256(raw + fitted + model_id.encode()).hexdigest()[:16]

    @classmethod
    def from_bank(cls, spec: ClassifierSpec, folder: Path, embed: Embed, cache_dir: Path | None,
                  model_id: str = "") -> RedFlagClassifier:
        """The shipped fit (``folder/fitted``) or the state dir's cached one when either
        matches, else a fit now, cached under ``cache_dir``."""
        name = f"{cls.key(spec, folder, model_id)}.npz"
        for found in [Path(folder) / SHIPPED / name] + ([Path(cache_dir) / name] if cache_dir else []):
            if found.is_file():
                return cls._load(found, spec, embed, model_id)
        texts, labels = read_bank(*cls.bank_files(spec, folder))
        if spec.tune is None:
            model = cls.fit(embed, texts, labels, spec.benign, spec.threshold, spec.regularisation)
        else:
            model = cls.fit_tuned(spec, _model_path(model_id), texts, labels, _log_progress)
        if cache_dir is not None:
            model.save(Path(cache_dir) / name)
        return model

    @classmethod
    def _load(cls, path: Path, spec: ClassifierSpec, embed: Embed, model_id: str) -> RedFlagClassifier:
        with np.load(path) as z:
            adapter = {k: z[k] for k in z.files if k.startswith(PREFIX)}
            if adapter:
                embed = TunedEncoder(_model_path(model_id), adapter, spec.tune)
            return cls(embed, list(z["labels"]), z["coef"], z["intercept"], spec.benign, spec.threshold, adapter)

    def save(self, path: Path) -> None:
        """Written to a temporary name and renamed: two servers starting at once never
        read half a file. The adapter is stored in half precision (read back as float32):
        half the size, and on medical's bank and both evaluation sets (8,759 texts) not one
        decision changed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.npz")
        adapter = {name: np.asarray(v, dtype=np.float16) for name, v in self.adapter.items()}
        np.savez(tmp, labels=np.array(self.labels), coef=self.coef, intercept=self.intercept, **adapter)
        os.replace(tmp, path)

    def require_messages(self, messages: dict[str, str]) -> None:
        """Every category the classifier can say has an escalation message to say."""
        missing = sorted(set(self.labels) - {self.labels[self.benign]} - set(messages))
        if missing:
            raise ConfigError(f"triage categories without an escalation message: {', '.join(missing)}")

    def probabilities(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> np.ndarray:
        x = self.embed(list(texts)) if vectors is None else vectors
        if self.coef.shape[0] == 1:  # two labels: scikit-learn keeps one row of weights
            p = 1 / (1 + np.exp(-(x @ self.coef[0] + self.intercept[0])))
            return np.column_stack([1 - p, p])
        logits = x @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def categories(self, texts: Sequence[str], vectors: np.ndarray | None = None,
                   probabilities: np.ndarray | None = None) -> list[str | None]:
        """Per text: its likeliest emergency category, or None when it reads as benign."""
        out = []
        for row in self.probabilities(texts, vectors) if probabilities is None else probabilities:
            if row[self.benign] >= self.threshold:
                out.append(None)
                continue
            row = row.copy()
            row[self.benign] = -1
            out.append(self.labels[int(row.argmax())])
        return out


def _model_path(model_id: str) -> str:
    if not model_id:
        raise ConfigError("a tuned triage classifier needs the embedding model it tunes (model_id)")
    from ..embedding import resolve_model_path

    return resolve_model_path(model_id)


def _log_progress(step: int, steps: int) -> None:
    if step == steps or step % max(1, steps // 10) == 0:
        log.info("tuning the triage encoder: step %d of %d", step, steps)

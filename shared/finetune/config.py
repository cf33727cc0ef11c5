"""Fine-tuning arguments (litgpt-style dataclasses: every field documented), read from a
domain's ``train.yaml``; unknown keys fail with their dotted path."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..settings import SYSTEM_REFS, ConfigError


@dataclass
class DataSource:
    """One instruction dataset and how its fields map to a chat exchange."""

    path: str
    """A .jsonl/.jsonl.gz/.json/.csv file (relative to the domain folder), ``hf:<name>[:split]``,
    or whatever file or folder the ``records`` source reads."""
    question: str = "question"
    """Field holding the user's message."""
    answer: str = "answer"
    """Field holding the assistant's reply."""
    group: str | None = None
    """Field whose value keeps related examples on one side of the train/validation split."""
    context: str | None = None
    """Optional field prepended to the question (e.g. PubMedQA abstracts)."""
    limit: int | None = None
    """Use only the first N records."""
    optional: bool = False
    """Skip this source silently when its file is absent (the shared datasets on a fresh machine)."""
    records: str | None = None
    """A registered training data source (shared/plugins.py), by name: a function of the resolved
    path that yields records (dicts) with the mapped fields, for datasets whose rows are not one
    example each (e.g. CUAD annotations), or ``feedback`` (reviewed chat feedback)."""


@dataclass
class DataArgs:
    """How examples are prepared."""

    sources: list[DataSource] = field(default_factory=list)
    """The datasets, in order."""
    system: str | None = None
    """The domain's system message every example is framed with, by name: ``chat`` (the
    domain's chat.system_prompt, the default) or ``judge`` (its analysis.judge_system)."""
    system_prompt: str | None = None
    """A system message of its own, as text (instead of ``system``)."""
    max_chars: int = 6000
    """Examples longer than this (question + answer) are dropped as over-long."""
    cleaners: list[str] = field(default_factory=list)
    """Registered cleaning rules (shared/plugins.py), by name, run in order on every answer after
    markup stripping: ``rule(question, answer) -> answer`` (e.g. a domain's restated-question
    stripper); the data card counts the examples each one changed."""
    min_answer_chars: int = 2
    """Shorter answers are dropped as empty."""
    near_duplicate_jaccard: float = 0.85
    """MinHash Jaccard estimate above which a later example is a near-duplicate of an earlier one."""
    val_fraction: float = 0.15
    """Share of groups (not examples) that go to validation."""
    augment: bool = True
    """Add template rephrasings of training questions (never to validation)."""
    seed: int = 0
    """Seed of the split hash and augmentation choices."""


@dataclass
class LoraArgs:
    """The adapter."""

    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    """LoRA alpha (scaling = alpha / r)."""
    dropout: float = 0.0
    """LoRA dropout (0 lets Unsloth use its fast path)."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Linear layers that get adapters."""


@dataclass
class TrainArgs:
    """The optimisation."""

    epochs: float = 1.0
    """Passes over the training set (ignored when max_steps > 0)."""
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: use epochs)."""
    learning_rate: float = 2e-4
    """Peak learning rate (linear decay after warm-up)."""
    warmup_steps: int = 5
    """Linear warm-up steps."""
    batch_size: int = 4
    """Examples per device step."""
    grad_accum: int = 1
    """Steps accumulated per optimiser step."""
    max_seq_length: int = 512
    """Tokens per example (longer ones are truncated by the trainer)."""
    eval_steps: int = 20
    """Validation loss every N steps."""
    save_steps: int = 20
    """Checkpoint every N steps (what --resume continues from)."""
    save_total_limit: int = 2
    """Checkpoints kept."""
    logging_steps: int = 5
    """Training loss logged every N steps."""
    load_in_4bit: bool | None = None
    """4-bit NF4 base weights (QLoRA); unset: on CUDA only (bitsandbytes 4-bit on CPU is ~20x slower)."""
    seed: int = 0
    """Seed of initialisation and data order."""


@dataclass
class FinetuneConfig:
    """Everything ``assistants train DOMAIN`` needs."""

    data: DataArgs = field(default_factory=DataArgs)
    lora: LoraArgs = field(default_factory=LoraArgs)
    train: TrainArgs = field(default_factory=TrainArgs)
    base_model: str | None = None
    """Base model (HF dir, hub id or GGUF); unset: the domain's generation.model (the bundled GGUF)."""
    metric: str = "val_loss"
    """Validation metric that gates promotion (lower is better)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls, data: Any, path: str):
    """A dataclass from a mapping, recursing into dataclass and list-of-dataclass fields
    by their type hints; an unknown key fails with its dotted path."""
    if not isinstance(data, dict):
        raise ConfigError(f"key '{path}': expected a mapping")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"key '{path + '.' if path else ''}{unknown[0]}': unknown (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        sub, hint = f"{path}.{name}" if path else name, hints[name]
        item = typing.get_args(hint)[0] if typing.get_origin(hint) is list and typing.get_args(hint) else None
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value, sub)
        elif item is not None and dataclasses.is_dataclass(item):
            if not isinstance(value, list):
                raise ConfigError(f"key '{sub}': expected a list")
            value = [_build(item, v, f"{sub}[{i}]") for i, v in enumerate(value)]
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"key '{path}': {e}") from None


def load_finetune_config(domain_dir: Path, overrides: dict | None = None, path: Path | None = None) -> FinetuneConfig:
    """``<domain>/train.yaml`` (or ``path``; absent: defaults) with optional overrides merged in."""
    from ..settings import _read_yaml, deep_merge

    path = Path(path) if path else Path(domain_dir) / "train.yaml"
    data = _read_yaml(path) if path.is_file() else {}
    config = _build(FinetuneConfig, deep_merge(data, overrides or {}), "")
    t = config.train
    if config.data.system is not None and config.data.system not in SYSTEM_REFS:
        raise ConfigError(f"{path}: key 'data.system': {config.data.system!r} is none of {', '.join(SYSTEM_REFS)}")
    if config.data.system and config.data.system_prompt:
        raise ConfigError(f"{path}: key 'data.system': give `system` (a reference) or `system_prompt` (text), not both")
    if config.data.val_fraction <= 0 or config.data.val_fraction >= 1:
        raise ConfigError(f"{path}: key 'data.val_fraction': must be between 0 and 1")
    if t.batch_size < 1 or t.grad_accum < 1 or t.eval_steps < 1 or t.save_steps < 1:
        raise ConfigError(f"{path}: key 'train': batch_size, grad_accum, eval_steps and save_steps must be >= 1")
    return config

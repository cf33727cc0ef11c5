"""The embedding model tuned to a triage bank: a LoRA adapter on the sentence encoder,
trained to tell the bank's labels apart, then merged into a private copy of the encoder.

Why: a logistic regression over frozen sentence embeddings separates topics, but a
near-miss ("my chest is sore after push-ups") embeds next to the emergency it resembles.
Tuning the encoder itself on the bank moves those apart. Checked on the banks as they
arrived (each bank unseen, the classifier trained on the ones before it;
benchmarks/triage_unseen.py): the classifier alone went from 0.838 recall at 2.1% false
alarms to 0.934 at 1.9%. Only the adapter's weights are shipped (under 3 MB); the encoder
comes from the installed embedding model.

Needs torch and peft (the fine-tuning extra); ``require_tuning`` says so clearly."""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..quiet import quiet_ml_imports
from ..settings import ConfigError

log = logging.getLogger(__name__)
PREFIX = "lora:"  # how the adapter's tensors are named inside a fit's .npz
Progress = Callable[[int, int], None]


class TuneSpec(BaseModel):
    """The ``classifier.tune`` section of a safety-rules file."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(2.0, gt=0, description="Passes over the bank.")
    learning_rate: float = Field(5e-4, gt=0, description="AdamW learning rate of the adapter.")
    head_learning_rate: float = Field(1e-3, gt=0, description="AdamW learning rate of the label head used in training.")
    rank: int = Field(16, ge=1, description="LoRA rank; alpha is twice it.")
    batch_size: int = Field(32, ge=1, description="Messages per step.")
    seed: int = Field(0, description="Seeds the batches and the adapter's initial weights.")
    targets: list[str] = Field(["query", "key", "value", "dense"],
                               description="Linear layers of the encoder that get an adapter.")


def tuning_available() -> bool:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def require_tuning() -> None:
    if not tuning_available():
        raise ConfigError("classifier.tune needs torch and peft: pip install -e '.[unsloth-deps]' "
                          "or remove the tune section to use the frozen embeddings")


def _lora(encoder, spec: TuneSpec):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=spec.rank, lora_alpha=2 * spec.rank, lora_dropout=0.0, target_modules=spec.targets)
    return get_peft_model(encoder, config)


def _load_encoder(model_path: str):
    """A private copy: merging an adapter must not change the retrieval embeddings."""
    quiet_ml_imports()
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device="cpu")


def _pooled(model, texts: Sequence[str]):
    """Mean-pooled, normalised, as the sentence-transformers model pools at inference."""
    import torch

    batch = model.tokenizer(list(texts), padding=True, truncation=True, max_length=model.max_seq_length,
                            return_tensors="pt")
    hidden = model[0].auto_model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def tune_encoder(model_path: str, texts: Sequence[str], labels: Sequence[str], spec: TuneSpec,
                 progress: Progress | None = None) -> dict[str, np.ndarray]:
    """Trains the adapter with a linear head over the pooled vectors (cross-entropy on the
    labels); returns the adapter's tensors. The head is dropped: the classifier fits its
    own regression on the tuned vectors."""
    require_tuning()
    import torch

    torch.manual_seed(spec.seed)
    model = _load_encoder(model_path)
    adapted = _lora(model[0].auto_model, spec)  # adapters go into the encoder's layers in place
    classes = sorted(set(labels))
    target = torch.tensor([classes.index(label) for label in labels])
    head = torch.nn.Linear(model.get_embedding_dimension(), len(classes))
    trainable = [p for p in adapted.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW([{"params": trainable, "lr": spec.learning_rate},
                                   {"params": head.parameters(), "lr": spec.head_learning_rate}], weight_decay=0.01)
    rng = np.random.default_rng(spec.seed)
    size = min(spec.batch_size, len(texts))
    steps = max(1, int(spec.epochs * len(texts) / size))
    model.train()
    for step in range(steps):
        pick = rng.choice(len(texts), size, replace=False)
        # The vectors are unit length: scaling the logits lets the softmax get confident.
        logits = head(_pooled(model, [texts[i] for i in pick])) * 20
        loss = torch.nn.functional.cross_entropy(logits, target[pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress(step + 1, steps)
    return {PREFIX + name: p.detach().numpy().copy() for name, p in _adapter_parameters(adapted)}


def _adapter_parameters(peft_model):
    return [(name, p) for name, p in peft_model.named_parameters() if "lora_" in name]


class TunedEncoder:
    """``texts -> normalised vectors`` of the encoder with the adapter merged in."""

    def __init__(self, model_path: str, adapter: dict[str, np.ndarray], spec: TuneSpec):
        require_tuning()
        import torch

        self.adapter = adapter
        self.model = _load_encoder(model_path)
        peft_model = _lora(self.model[0].auto_model, spec)
        state = {name[len(PREFIX):]: torch.from_numpy(np.asarray(v, dtype=np.float32)) for name, v in adapter.items()}
        wanted = {name for name, _ in _adapter_parameters(peft_model)}
        if set(state) != wanted:
            raise ConfigError(f"the triage fit's adapter does not fit {model_path} "
                              f"(e.g. {sorted(set(state) ^ wanted)[:2]}): refit it")
        peft_model.load_state_dict(state, strict=False)
        self.model[0].auto_model = peft_model.merge_and_unload()
        self.model.eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False)

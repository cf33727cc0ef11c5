"""Backend lookup: each backend module says whether it can run here and how to install
it; nothing heavy is imported until a backend is actually created."""
from __future__ import annotations

import importlib
from pathlib import Path

from ..settings import GenerationSettings
from .base import GenerationError, Generator

# name -> (module, class)
BACKENDS: dict[str, tuple[str, str]] = {
    "llamacpp": ("llamacpp_backend", "LlamaCppGenerator"),
    "transformers": ("transformers_backend", "TransformersGenerator"),
    "unsloth": ("unsloth_backend", "UnslothGenerator"),
    "openai": ("openai_backend", "OpenAIGenerator"),
}


def _module(name: str):
    return importlib.import_module(f"{__package__}.{BACKENDS[name][0]}")


def is_available(name: str) -> bool:
    return _module(name).is_available()


def available_backends() -> list[str]:
    return [name for name in BACKENDS if is_available(name)]


def _cuda() -> bool:
    if not is_available("transformers"):
        return False
    import torch

    return torch.cuda.is_available()


def resolve(name: str) -> str:
    """``auto`` -> unsloth on CUDA (when installed), llamacpp on CPU."""
    if name != "auto":
        return name
    return "unsloth" if _cuda() and is_available("unsloth") else "llamacpp"


def create_generator(settings: GenerationSettings, state_dir: Path) -> Generator:
    name = resolve(settings.backend)
    module = _module(name)
    if not module.is_available():
        raise GenerationError(f"generation backend {name!r} is not installed: {module.INSTALL_HINT}")
    return getattr(module, BACKENDS[name][1])(settings, state_dir)

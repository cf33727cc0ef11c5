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
    "engine": ("engine_backend", "EngineGenerator"),
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


# One loaded model per distinct generation config, shared by the domains of a process.
_SHARED: dict[str, Generator] = {}


def for_serving(settings: GenerationSettings) -> GenerationSettings:
    """The settings a served app uses: with ``generation.serve: engine`` a local GGUF model
    (``auto`` on a CPU, or ``llamacpp``) runs in the managed engine, shared by the domains and
    decoding many turns at once, instead of inside the app one turn at a time."""
    if settings.serve != "engine" or resolve(settings.backend) != "llamacpp" or not is_available("engine"):
        return settings
    return settings.model_copy(update={"backend": "engine"})


def shared_generator(settings: GenerationSettings, state_dir: Path) -> Generator:
    """The process's generator for ``settings``, loaded on first use: domains (and promoted-
    adapter followers serving the base model) on the same config share one model."""
    key = settings.model_dump_json()
    if key not in _SHARED:
        _SHARED[key] = create_generator(settings, state_dir)
    return _SHARED[key]


def create_generator(settings: GenerationSettings, state_dir: Path) -> Generator:
    name = resolve(settings.backend)
    module = _module(name)
    if not module.is_available():
        raise GenerationError(f"generation backend {name!r} is not installed: {module.INSTALL_HINT}")
    return getattr(module, BACKENDS[name][1])(settings, state_dir)

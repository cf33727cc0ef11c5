"""Serving the registry's promoted adapter: ``generation.adapter: promoted`` resolves to the
artifact each backend loads (for llamacpp the GGUF export, by default merged into a copy
of the base GGUF; for the engine the GGUF export, applied per request; the PEFT folder
for transformers/unsloth; for vLLM the PEFT folder, loaded into the running server), and a
running server follows promotions between turns."""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..generation import GenerationError, Generator, create_generator, resolve, shared_generator
from ..generation.models import file_sha256, model_id, model_path
from ..settings import Settings
from .registry import Adapter, AdapterRegistry

PROMOTED = "promoted"
log = logging.getLogger(__name__)


def artifact(adapter: Adapter, backend: str, server: str = "openai") -> str:
    """The file or folder of ``adapter`` that ``backend`` loads (on ``server``, for openai)."""
    if backend in ("llamacpp", "engine"):
        if not adapter.gguf.is_file():
            raise GenerationError(f"adapter {adapter.version} has no GGUF export; serve it with the transformers or "
                                  "unsloth backend")
        return str(adapter.gguf)
    if backend in ("transformers", "unsloth") or (backend == "openai" and server == "vllm"):
        return str(adapter.peft_dir)  # vLLM loads the PEFT folder into the running server
    raise GenerationError(f"the {backend} backend serves adapters by the name its server gives them: set "
                          "generation.adapter to that name instead of 'promoted'")


def check_base(adapter: Adapter, configured_model: str | None) -> None:
    """A LoRA only means something on the weights it was trained on."""
    served = model_id(model_path(configured_model))
    if adapter.manifest.get("base_model") != served:
        raise GenerationError(f"adapter {adapter.version} was trained on {adapter.manifest.get('base_model')}, "
                              f"but the served model is {served}")


def merged_model(adapter: Adapter, lora_gguf: Path, base: Path) -> Path:
    """The base GGUF with the adapter's GGUF LoRA merged in, made once per (adapter, base weights)."""
    from .gguf_export import merge

    out = adapter.path / f"merged-{file_sha256(base)[:12]}" / f"{base.stem}+{adapter.version}.gguf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        log.info("merging %s into %s", adapter.version, base.name)
        merge(base, lora_gguf, out)
    return out


class PromotedAdapter:
    """The generator for a domain's promoted adapter (the base model while none is). Each
    ``current()`` reads the registry's pointer; after a promotion it loads the new adapter
    and hands out the new generator, while turns already streaming finish on the old one."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = AdapterRegistry(settings.state_dir, settings.domain.name)
        self._lock = threading.Lock()
        self._version: str | None = None
        self._generator: Generator | None = None

    def load(self, adapter: Adapter | None) -> Generator:
        """A generator for ``adapter`` (the base model for None), built like the served one."""
        g, state_dir = self.settings.generation, self.settings.state_dir
        if adapter is None:  # the base model, shared with any domain served on it
            return shared_generator(g.model_copy(update={"adapter": None}), state_dir)
        check_base(adapter, g.model)
        backend = resolve(g.backend)
        lora = artifact(adapter, backend, g.server)
        if backend == "llamacpp" and g.merge_adapter:
            update = {"adapter": None, "model": str(merged_model(adapter, Path(lora), model_path(g.model)))}
        else:
            update = {"adapter": lora}
        # Not shared: the old adapter's model is released once its last turn ends.
        generator = create_generator(g.model_copy(update=update), state_dir)
        generator.adapter_version = f"{self.settings.domain.name}/{adapter.version}"
        return generator

    def current(self) -> Generator:
        version = self.registry.promoted_version()
        with self._lock:
            if self._generator is None or version != self._version:
                try:
                    self._generator = self.load(self.registry.get(version) if version else None)
                except (GenerationError, KeyError) as e:
                    if self._generator is None:
                        raise
                    # Keep answering with the adapter that works; say why the new one is not served.
                    log.error("%s keeps serving %s: %s", self.settings.domain.name, self._version or "the base model", e)
                else:
                    log.info("%s now serves adapter %s", self.settings.domain.name, version or "none (base model)")
                self._version = version
            return self._generator


def vllm_spec(state_dir: Path, domains: list[str], **kw):
    """The vLLM server for a deployment: the bundled model's HF copy (dequantized once from
    the GGUF under ``<state>/models``, since vLLM reads no GGUF on a CPU) served under the
    GGUF's content id, and each domain's promoted adapter (PEFT folder) under the domain's
    name. ``kw``: the rest of ``VllmSpec`` (host, port, ...)."""
    from ..generation.models import bundled_gguf, dequantized_checkpoint
    from ..generation.vllm import VllmSpec

    gguf = bundled_gguf()
    served = model_id(gguf)
    loras = {}
    for domain in domains:
        adapter = AdapterRegistry(state_dir, domain).promoted()
        if adapter is None:
            continue
        try:
            check_base(adapter, None)
        except GenerationError as e:
            log.error("%s: not serving its promoted adapter on vLLM: %s", domain, e)
            continue
        loras[domain] = str(adapter.peft_dir.resolve())
    base = dequantized_checkpoint(gguf, Path(state_dir) / "models")
    return VllmSpec(model=str(base.resolve()), served_name=served, loras=loras, **kw)

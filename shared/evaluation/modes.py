"""The four ways a domain can answer, compared by the benchmarks:

- ``base``: the base model alone;
- ``rag``: the base model with retrieved passages;
- ``finetune``: the domain's adapter alone;
- ``hybrid``: the adapter with retrieved passages.

The adapter is the registry's promoted one, else its newest; without any, the modes that
need it are skipped with the reason."""
from __future__ import annotations

from dataclasses import dataclass

MODES = ("base", "rag", "finetune", "hybrid")


@dataclass
class Mode:
    name: str
    generator: object | None     # None: skipped
    retrieval: bool
    skipped: str | None = None   # why the mode cannot run here


def adapter_of(settings):
    from ..finetune.registry import AdapterRegistry

    registry = AdapterRegistry(settings.state_dir, settings.domain.name)
    promoted = registry.promoted()
    versions = registry.versions()
    return promoted or (versions[-1] if versions else None)


def load_modes(settings, wanted: list[str]) -> list[Mode]:
    from ..finetune.serving import PromotedAdapter

    loader = PromotedAdapter(settings)
    adapter = adapter_of(settings) if {"finetune", "hybrid"} & set(wanted) else None
    base = loader.load(None) if {"base", "rag"} & set(wanted) else None
    tuned = loader.load(adapter) if adapter is not None else None
    out = []
    for name in wanted:
        uses_adapter, retrieval = name in ("finetune", "hybrid"), name in ("rag", "hybrid")
        if uses_adapter and tuned is None:
            out.append(Mode(name, None, retrieval, f"no {settings.domain.name} adapter registered "
                                                   f"(assistants train {settings.domain.name})"))
        else:
            out.append(Mode(name, tuned if uses_adapter else base, retrieval))
    return out

"""The plugin registry: what a domain adds to the core, by kind and name.

A domain's plugin modules (named in its config under ``domain.plugins``, imported by the
domain loader in ``assistants/domains.py``) register their plugins when imported; the core
looks them up here by the name a config gives. Kinds:

- ``benchmark format``: a reader of a dataset file into evaluation items (and passages), with
  an optional scorer of a free-text answer (``kind: answer`` items) where the format scores
  answers its own way (``@benchmark_format("name", score_answer=...)``).

The core never imports a domain; a name nobody registered fails with the kind, the name and
what is registered."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .settings import ConfigError

BENCHMARK_FORMAT = "benchmark format"
KINDS = (BENCHMARK_FORMAT,)


class PluginError(ConfigError):
    """A plugin is not registered, or two different plugins claim one name."""


@dataclass(frozen=True)
class BenchmarkFormat:
    name: str
    read: Callable[[Path, Path | None], Any]
    """``read(path, context)`` -> a ``shared.evaluation.datasets.Dataset``: items and passages
    (``context``: the benchmark's `context` file beside the data, for formats that have one)."""
    score_answer: Callable[[str, Any], dict[str, float]] | None = None
    """``score_answer(answer, item)`` -> scores of a free-text answer; unset: EM/F1 with scale
    (shared/evaluation/metrics.py)."""


_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}


def _origin(plugin: Any) -> str:
    target = getattr(plugin, "read", plugin)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def register(kind: str, name: str, plugin: Any) -> Any:
    """Register ``plugin`` as ``name`` of ``kind``. The same code registering again (a module
    imported anew) replaces it; another plugin under a taken name is an error."""
    if kind not in _REGISTRY:
        raise PluginError(f"no plugin kind {kind!r} (known: {', '.join(KINDS)})")
    taken = _REGISTRY[kind].get(name)
    if taken is not None and _origin(taken) != _origin(plugin):
        raise PluginError(f"{kind} {name!r} is registered twice: by {_origin(taken)} and by {_origin(plugin)}")
    _REGISTRY[kind][name] = plugin
    return plugin


def lookup(kind: str, name: str) -> Any:
    if kind not in _REGISTRY:
        raise PluginError(f"no plugin kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        raise PluginError(f"no {kind} {name!r} is registered; known: {', '.join(registered(kind)) or 'none'} "
                          "(a domain registers its own in a module its config names under domain.plugins)") from None


def registered(kind: str) -> list[str]:
    return sorted(_REGISTRY.get(kind, {}))


def benchmark_format(name: str, score_answer: Callable[[str, Any], dict[str, float]] | None = None):
    """Decorator registering a reader ``read(path, context) -> Dataset`` as the benchmark
    format ``name`` (what a benchmark's ``format`` names in config.yaml)."""
    def deco(read: Callable[[Path, Path | None], Any]):
        register(BENCHMARK_FORMAT, name, BenchmarkFormat(name, read, score_answer))
        return read
    return deco


def benchmark_format_named(name: str) -> BenchmarkFormat:
    return lookup(BENCHMARK_FORMAT, name)

"""The plugin registry: what a domain adds to the core, by kind and name.

A domain's plugin modules (named in its config under ``domain.plugins``, imported by the
domain loader in ``assistants/domains.py``) register their plugins when imported; the core
looks them up here by the name a config gives. Kinds:

- ``benchmark format``: a reader of a dataset file into evaluation items (and passages), with
  an optional scorer of a free-text answer (``kind: answer`` items) where the format scores
  answers its own way (``@benchmark_format("name", score_answer=...)``).
- ``importer``: ``f(path)`` yielding records ``{"id", "title", "text", ...}`` (``domain.importers``,
  a benchmark's ``importer``).
- ``tool provider``: ``f(runtime)`` -> the domain's tools by name (``tools.provider``).
- ``command group``: ``f(subparsers)`` adding ``assistants DOMAIN ...`` commands (``domain.commands``).
- ``setup hook``: ``f(runtime, progress)`` -> a one-line summary, run by ``assistants up``
  (``domain.setup``).
- ``training data source``: ``f(path)`` yielding training records (a train.yaml source's
  ``records``); the core's own is ``feedback`` (shared/candidates.py).
- ``cleaning rule``: ``f(question, answer)`` -> the answer rewritten (train.yaml ``cleaners``).
- ``labeling function``: the code a labeling rule runs (labeling.yaml: a heuristic's
  ``function``, a model rule's ``scorer``, a similarity rule's ``embed``).
- ``labeling hook``: labeling.yaml's ``examples`` (labeled text -> training records) and
  ``pool`` (a folder -> unlabeled records).

Each kind has a decorator, ``@importer("name")`` and so on, that registers the function
under the name a config gives and returns it unchanged.

The core never imports a domain; a name nobody registered fails with the kind, the name and
what is registered."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .settings import ConfigError

BENCHMARK_FORMAT = "benchmark format"
IMPORTER = "importer"
TOOL_PROVIDER = "tool provider"
COMMAND_GROUP = "command group"
SETUP_HOOK = "setup hook"
TRAINING_SOURCE = "training data source"
CLEANING_RULE = "cleaning rule"
LABELING_FUNCTION = "labeling function"
LABELING_HOOK = "labeling hook"
KINDS = (BENCHMARK_FORMAT, IMPORTER, TOOL_PROVIDER, COMMAND_GROUP, SETUP_HOOK, TRAINING_SOURCE, CLEANING_RULE,
         LABELING_FUNCTION, LABELING_HOOK)


class PluginError(ConfigError):
    """A plugin is not registered, or two different plugins claim one name."""


@dataclass(frozen=True)
class BenchmarkFormat:
    name: str
    read: Callable[[Path, Path | None], Any]
    """``read(path, context)`` -> a ``shared.evaluation.datasets.Dataset``: items and passages
    (``context``: the benchmark's `context` file beside the data, for formats that have one)."""
    score_answer: Callable[[str, Any], dict[str, float]] | None = None
    """``score_answer(answer, item)`` -> scores of a free-text answer; unset: normalised exact
    match and token F1 (``exact_and_f1`` in shared/evaluation/metrics.py)."""


_REGISTRY: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}


def _origin(plugin: Any) -> str:
    target = getattr(plugin, "read", plugin)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', '?')}"


def _kind(kind: str) -> dict[str, Any]:
    if kind not in _REGISTRY:
        raise PluginError(f"no plugin kind {kind!r} (known: {', '.join(KINDS)})")
    return _REGISTRY[kind]


def register(kind: str, name: str, plugin: Any) -> Any:
    """Register ``plugin`` as ``name`` of ``kind``. The same code registering again (a module
    imported anew) replaces it; another plugin under a taken name is an error."""
    taken = _kind(kind).get(name)
    if taken is not None and _origin(taken) != _origin(plugin):
        raise PluginError(f"{kind} {name!r} is registered twice: by {_origin(taken)} and by {_origin(plugin)}")
    _REGISTRY[kind][name] = plugin
    return plugin


def lookup(kind: str, name: str) -> Any:
    try:
        return _kind(kind)[name]
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


def _registrar(kind: str):
    """The decorator of a kind whose plugins are plain functions: ``@deco("name")``."""
    def decorator(name: str):
        def deco(fn: Callable) -> Callable:
            register(kind, name, fn)
            return fn
        return deco
    decorator.__doc__ = f"Decorator registering a function as the {kind} ``name``."
    return decorator


importer = _registrar(IMPORTER)
tool_provider = _registrar(TOOL_PROVIDER)
command_group = _registrar(COMMAND_GROUP)
setup_hook = _registrar(SETUP_HOOK)
training_source = _registrar(TRAINING_SOURCE)
cleaning_rule = _registrar(CLEANING_RULE)
labeling_function = _registrar(LABELING_FUNCTION)
labeling_hook = _registrar(LABELING_HOOK)

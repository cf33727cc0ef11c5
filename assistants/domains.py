"""The registry of domains. A domain is a folder with a ``config.yaml`` and a ``samples/``
corpus. The suite's own are packages in the repository, listed in ``DOMAINS`` (a test fails
if a domain folder exists there but is not listed); domains kept elsewhere are named by
``ASSISTANTS_DOMAINS``, a list of their folders (separated like PATH, by ``os.pathsep``),
each domain named after its folder. An external folder's parent goes on ``sys.path``, so
its modules import as ``<name>.<module>`` like the suite's own (``<name>.plugins``).

Loading a domain's settings imports the plugin modules its config names
(``domain.plugins``): they register the domain's plugins (shared/plugins.py), such as its
benchmark formats, importers, tools, commands and setup hooks, training sources, cleaning
and labeling code. This is the one place that imports a domain's code for the core."""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path

from shared.settings import ConfigError, Settings, load_settings

DOMAINS: tuple[str, ...] = ("finance", "medical", "legal")
EXTERNAL_ENV = "ASSISTANTS_DOMAINS"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")  # a domain name (shared.settings.DomainSettings.name)


def external() -> dict[str, Path]:
    """The domain folders ``ASSISTANTS_DOMAINS`` names, by domain name, made importable."""
    out: dict[str, Path] = {}
    for raw in os.environ.get(EXTERNAL_ENV, "").split(os.pathsep):
        if not raw.strip():
            continue
        folder = Path(raw.strip()).expanduser().resolve()
        name = folder.name
        if not (folder / "config.yaml").is_file():
            raise ConfigError(f"{EXTERNAL_ENV}: {folder} is not a domain folder (it has no config.yaml)")
        if not _NAME.match(name):
            raise ConfigError(f"{EXTERNAL_ENV}: {folder}: a domain folder's name is its domain name: lower-case "
                              "letters, digits and _, starting with a letter")
        if name in DOMAINS or name in out:
            raise ConfigError(f"{EXTERNAL_ENV}: {folder}: there is already a domain named {name!r}")
        _importable(name, folder)
        out[name] = folder
    return out


def _importable(name: str, folder: Path) -> None:
    """Put the folder's parent on sys.path, unless another module already has the name."""
    parent = str(folder.parent)
    if parent not in sys.path:
        sys.path.append(parent)
        importlib.invalidate_caches()
    spec = importlib.util.find_spec(name)
    where = [] if spec is None else list(spec.submodule_search_locations or [])
    if not any(Path(w).resolve() == folder for w in where):
        taken = spec.origin if spec is not None and spec.origin else where
        raise ConfigError(f"{EXTERNAL_ENV}: {folder}: the name {name!r} is taken by the module at {taken}; "
                          "rename the domain folder")


def domains() -> tuple[str, ...]:
    """Every domain: the suite's own, then the external ones."""
    return DOMAINS + tuple(external())


def domain_dir(name: str) -> Path:
    outside = external()
    if name in outside:
        return outside[name]
    if name not in DOMAINS:
        raise SystemExit(f"unknown domain {name!r} (known: {', '.join(DOMAINS + tuple(outside))})")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"domain package {name!r} is not installed")
    return Path(spec.origin).parent


def load_plugins(settings: Settings) -> Settings:
    """Import the domain's plugin modules (each registers its plugins when imported)."""
    for module in settings.domain.plugins:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ConfigError(f"{settings.domain.name}: key 'domain.plugins': module {module!r} cannot be "
                              f"imported: {e}") from None
    return settings


def settings_for(name: str) -> Settings:
    settings = load_settings(domain_dir(name))
    if settings.domain.name != name:
        raise ConfigError(f"{domain_dir(name) / 'config.yaml'}: key 'domain.name' is {settings.domain.name!r}, "
                          f"but the folder names the domain {name!r}")
    return load_plugins(settings)


def samples_dir(name: str) -> Path:
    return domain_dir(name) / settings_for(name).domain.samples

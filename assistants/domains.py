"""The registry of domains. A domain is a package folder with a ``config.yaml`` and a
``samples/`` corpus; adding one is that folder plus one name here (a test fails if a
domain folder exists but is not registered).

Loading a domain's settings imports the plugin modules its config names
(``domain.plugins``): they register the domain's plugins (shared/plugins.py), such as its
benchmark formats. This is the one place that imports a domain's code for the core."""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from shared.settings import ConfigError, Settings, load_settings

DOMAINS: tuple[str, ...] = ("finance", "medical", "legal")


def domain_dir(name: str) -> Path:
    if name not in DOMAINS:
        raise SystemExit(f"unknown domain {name!r} (known: {', '.join(DOMAINS)})")
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
    return load_plugins(load_settings(domain_dir(name)))


def samples_dir(name: str) -> Path:
    return domain_dir(name) / settings_for(name).domain.samples

"""The registry of domains. A domain is a package folder with a ``config.yaml`` and a
``samples/`` corpus; adding one is that folder plus one name here (a test fails if a
domain folder exists but is not registered)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from shared.settings import Settings, load_settings

DOMAINS: tuple[str, ...] = ("finance", "medical", "legal")


def domain_dir(name: str) -> Path:
    if name not in DOMAINS:
        raise SystemExit(f"unknown domain {name!r} (known: {', '.join(DOMAINS)})")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"domain package {name!r} is not installed")
    return Path(spec.origin).parent


def settings_for(name: str) -> Settings:
    return load_settings(domain_dir(name))


def samples_dir(name: str) -> Path:
    return domain_dir(name) / settings_for(name).domain.samples

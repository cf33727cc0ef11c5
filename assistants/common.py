"""What the command modules of ``assistants`` share: a domain's runtime, the failures of an
ingestion, and the declaration of a command."""
from __future__ import annotations

import argparse
import sys

from .domains import domains, settings_for


def runtime(domain: str, db=None, serving: bool = False):
    """The domain's runtime; ``serving``: as a served app runs it (the local model in the
    managed engine, when ``generation.serve`` says so)."""
    from shared.generation import for_serving
    from shared.runtime import Runtime

    settings = settings_for(domain)
    if serving:
        settings = settings.model_copy(update={"generation": for_serving(settings.generation)})
    return Runtime(settings, db=db)


def failures(summary) -> int:
    """Print the files an ingestion could not use, by name, on stderr; returns their count."""
    for name, reason in summary.failed:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return len(summary.failed)


def command(sub, name: str, func, help: str, domain: bool = True, quiet: bool = False) -> argparse.ArgumentParser:
    """Add the command ``name`` to the subparsers ``sub``, run by ``func``, with the DOMAIN
    argument and the --quiet flag where asked."""
    c = sub.add_parser(name, help=help)
    c.set_defaults(func=func)
    if domain:
        c.add_argument("domain", choices=domains())
    if quiet:
        c.add_argument("--quiet", action="store_true", help="no progress bars")
    return c

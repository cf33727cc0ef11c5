"""What the command modules of ``assistants`` share: a domain's runtime, the failures of an
ingestion, and the declaration of a command."""
from __future__ import annotations

import argparse
import sys

from .domains import domains, settings_for


def runtime(domain: str, db=None):
    from shared.runtime import Runtime

    return Runtime(settings_for(domain), db=db)


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

"""`assistants finance ...`: the advisor's data commands.

  update-market PATH       upsert a price feed (CSV/JSON); safe to re-run, e.g. from cron
  generate-market OUT      write a seeded synthetic feed (--symbols, --years, --end, --seed)
  import-books FOLDER      clients/accounts/holdings/transactions CSVs (one transaction)
  import-users FILE        demo or migrated logins: username, display_name, password_hash
"""
from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from shared.plugins import command_group


def _update_market(runtime, args) -> str:
    from .market import update_market

    return str(update_market(runtime.db, args.path, progress=not args.quiet))


def _generate_market(runtime, args) -> str:
    from .market import synthetic_feed, write_feed

    n = write_feed(synthetic_feed(args.symbols, args.years, args.end, args.seed, args.weekly), args.out)
    return f"{n} rows for {args.symbols} symbols written to {args.out}"


def _import_books(runtime, args) -> str:
    from .books import import_books

    counts = import_books(runtime.db, args.folder)
    return ", ".join(f"{n} rows from {name}" for name, n in counts.items())


def _import_users(runtime, args) -> str:
    from .books import import_users

    return f"{import_users(runtime.db, args.file)} logins imported"


@command_group("finance")
def register(sub: argparse._SubParsersAction) -> None:
    """Each command's ``run(runtime, args)`` returns the line the CLI prints."""
    up = sub.add_parser("update-market", help="upsert a price feed (CSV or JSON), keeping history")
    up.add_argument("path", type=Path)
    up.add_argument("--quiet", action="store_true", help="no progress bar")
    up.set_defaults(run=_update_market)

    gen = sub.add_parser("generate-market", help="write a seeded synthetic price feed (CSV, .gz to compress)")
    gen.add_argument("out", type=Path)
    gen.add_argument("--symbols", type=int, default=300)
    gen.add_argument("--years", type=float, default=3.0)
    gen.add_argument("--end", type=date.fromisoformat, help="last day (default: today)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--weekly", action="store_true", help="Friday closes only")
    gen.set_defaults(run=_generate_market, needs_runtime=False)

    books = sub.add_parser("import-books", help="load clients, accounts, holdings and transactions CSVs")
    books.add_argument("folder", type=Path)
    books.set_defaults(run=_import_books)

    users = sub.add_parser("import-users", help="load logins (username, display_name, password_hash) from CSV")
    users.add_argument("file", type=Path)
    users.set_defaults(run=_import_users)

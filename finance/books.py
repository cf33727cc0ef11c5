"""Client books from CSV (clients, accounts, holdings, transactions) and the demo set-up
`assistants up` runs: the sample market feed, the sample books and their logins."""
from __future__ import annotations

import csv
from pathlib import Path

from shared.auth import Users
from shared.ingest.importers import DatasetError
from shared.plugins import setup_hook

from .market import update_market

HERE = Path(__file__).parent
SAMPLE_FEED = HERE / "market_data" / "sample_prices.csv"
SAMPLE_BOOKS = HERE / "portfolios"
# file -> (columns, the upsert). Holdings are a snapshot: an account's rows in the file
# replace that account's holdings; the other tables upsert by their keys.
TABLES = {
    "clients.csv": (("client_id", "name", "principal", "advisor"),
                    "INSERT INTO clients (client_id, name, principal, advisor) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (client_id) DO UPDATE SET name = EXCLUDED.name, principal = EXCLUDED.principal,"
                    " advisor = EXCLUDED.advisor"),
    "accounts.csv": (("account_id", "client_id", "name", "kind", "cash"),
                     "INSERT INTO accounts (account_id, client_id, name, kind, cash) VALUES (%s, %s, %s, %s, %s)"
                     " ON CONFLICT (account_id) DO UPDATE SET client_id = EXCLUDED.client_id, name = EXCLUDED.name,"
                     " kind = EXCLUDED.kind, cash = EXCLUDED.cash"),
    "holdings.csv": (("account_id", "symbol", "quantity", "cost_basis"),
                     "INSERT INTO holdings (account_id, symbol, quantity, cost_basis) VALUES (%s, %s, %s, %s)"),
    "transactions.csv": (("txn_id", "account_id", "day", "kind", "symbol", "quantity", "amount"),
                         "INSERT INTO transactions (txn_id, account_id, day, kind, symbol, quantity, amount)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (txn_id) DO UPDATE SET"
                         " account_id = EXCLUDED.account_id, day = EXCLUDED.day, kind = EXCLUDED.kind,"
                         " symbol = EXCLUDED.symbol, quantity = EXCLUDED.quantity, amount = EXCLUDED.amount"),
}


def _rows(path: Path, columns: tuple[str, ...], optional: tuple[str, ...] = ()) -> list[tuple]:
    """The named columns of each row (blank: None); an ``optional`` column may be absent."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or []) and c not in optional]
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}")
        return [tuple((r.get(c) or "").strip() or None for c in columns) for r in reader]


def import_books(db, folder: Path) -> dict[str, int]:
    """Load the CSVs present in ``folder`` in one owner transaction: any bad row (unknown
    symbol, unknown account, a negative amount) rolls the whole load back, with the row."""
    import psycopg

    folder = Path(folder)
    found = {name: _rows(folder / name, cols) for name, (cols, _) in TABLES.items() if (folder / name).is_file()}
    if not found:
        raise DatasetError(f"{folder}: none of {', '.join(TABLES)} found")
    with db.owner_session() as conn:
        for name, rows in found.items():
            if name == "holdings.csv":
                conn.execute("DELETE FROM holdings WHERE account_id = ANY(%s)", (sorted({r[0] for r in rows}),))
            for i, row in enumerate(rows, start=2):
                try:
                    with conn.transaction():  # a savepoint, so the error names this row
                        conn.execute(TABLES[name][1], row)
                except psycopg.Error as e:
                    detail = (e.diag.message_detail or e.diag.message_primary or str(e)).strip()
                    raise DatasetError(f"{folder / name} row {i}: {detail}; nothing was imported") from None
    return {name: len(rows) for name, rows in found.items()}


def import_users(db, path: Path) -> int:
    """Logins from CSV (username, display_name, password_hash, and optionally roles separated
    by ';'): hashes only, never passwords. Blank or absent roles keep an account's roles
    (``assistants users roles`` takes them away)."""
    rows = _rows(Path(path), ("username", "display_name", "password_hash", "roles"), optional=("roles",))
    users = Users(db)
    for name, display, stored, roles in rows:
        users.add(name, display_name=display, password_hash=stored, roles=roles.split(";") if roles else None)
    return len(rows)


@setup_hook("finance")
def prepare(runtime, progress: bool = False) -> str:
    """`assistants up`: the sample feed, the sample books and the demo logins (idempotent)."""
    stats = update_market(runtime.db, SAMPLE_FEED, progress)
    books = import_books(runtime.db, SAMPLE_BOOKS)
    logins = import_users(runtime.db, SAMPLE_BOOKS / "users.csv")
    return (f"market data {stats}; {books.get('clients.csv', 0)} clients, {books.get('accounts.csv', 0)} accounts; "
            f"{logins} demo logins")

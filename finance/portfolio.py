"""Portfolio figures computed from the real tables, always as a principal: row-level
security decides which clients, accounts, holdings and transactions a query can see."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

CENT = Decimal("0.01")
# The sign each transaction kind gives to cash and to the security's quantity.
CASH_SIGN = {"deposit": 1, "withdrawal": -1, "buy": -1, "sell": 1, "dividend": 1, "fee": -1}
QTY_SIGN = {"buy": 1, "sell": -1}
EXTERNAL = {"deposit": 1, "withdrawal": -1}


@dataclass
class Client:
    client_id: str
    name: str
    principal: str | None


@dataclass
class Position:
    account_id: str
    symbol: str
    name: str
    asset_class: str
    sector: str
    quantity: Decimal
    cost_basis: Decimal
    price: Decimal | None
    price_day: date | None

    @property
    def value(self) -> Decimal:
        return (self.quantity * (self.price or 0)).quantize(CENT)


@dataclass
class Book:
    """The chosen clients' accounts on one date: positions priced at the last close on or
    before it, and cash."""

    clients: list[Client]
    accounts: dict[str, str]        # account id -> name
    positions: list[Position]
    cash: dict[str, Decimal]        # account id -> cash
    on: date | None                 # the date asked about (None: latest data)
    whole: bool = True              # every account of these clients (False: the ones asked about)

    @property
    def total(self) -> Decimal:
        return sum((p.value for p in self.positions), Decimal(0)) + sum(self.cash.values(), Decimal(0))

    @property
    def as_of(self) -> date | None:
        """The stalest price the figures use: what "as of" can honestly claim."""
        days = [p.price_day for p in self.positions if p.price_day]
        return min(days) if days else None

    def by(self, key: str) -> dict[str, Decimal]:
        """Value per asset class or sector (cash counts as its own class)."""
        out: dict[str, Decimal] = defaultdict(Decimal)
        for p in self.positions:
            out[getattr(p, key) or "unclassified"] += p.value
        cash = sum(self.cash.values(), Decimal(0))
        if cash:
            out["cash"] += cash
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def visible_clients(db, principal: str) -> list[Client]:
    with db.session(principal) as conn:
        return [Client(*r) for r in conn.execute("SELECT client_id, name, principal FROM clients ORDER BY name")]


@dataclass
class Scope:
    """Whose books a question is about: these clients, all their accounts or only some."""

    clients: list[Client]
    accounts: list[str] | None = None   # None: every account of theirs

    @property
    def client_ids(self) -> list[str]:
        return [c.client_id for c in self.clients]


# The accounts of a scope; an account list narrows the clients' accounts, never widens them.
_SCOPED_ACCOUNTS = ("SELECT account_id FROM accounts WHERE client_id = ANY(%s)"
                    " AND (%s::text[] IS NULL OR account_id = ANY(%s))")


def latest_day(db, principal: str, scope: Scope) -> date | None:
    """The newest price day of anything these accounts hold."""
    with db.session(principal) as conn:
        (day,) = conn.execute(
            "SELECT max(p.day) FROM prices p WHERE p.symbol IN (SELECT h.symbol FROM holdings h"
            f" WHERE h.account_id IN ({_SCOPED_ACCOUNTS}))",
            (scope.client_ids, scope.accounts, scope.accounts)).fetchone()
    return day


def book(db, principal: str, scope: Scope, on: date | None = None) -> Book:
    """Positions and cash on ``on`` (None: now): today's holdings with the transactions
    after ``on`` undone, priced at the last close on or before ``on``."""
    with db.session(principal) as conn:
        rows = conn.execute(f"SELECT account_id, name, cash FROM accounts WHERE account_id IN ({_SCOPED_ACCOUNTS})"
                            " ORDER BY name", (scope.client_ids, scope.accounts, scope.accounts)).fetchall()
        accounts = {acc: name for acc, name, _ in rows}
        cash = {acc: amount for acc, _, amount in rows}
        qty: dict[tuple[str, str], Decimal] = {}
        basis: dict[tuple[str, str], Decimal] = {}
        for acc, sym, q, cost in conn.execute(
                "SELECT account_id, symbol, quantity, cost_basis FROM holdings WHERE account_id = ANY(%s)",
                (list(accounts),)):
            qty[(acc, sym)], basis[(acc, sym)] = q, cost
        if on is not None:
            for acc, kind, sym, q, amount in conn.execute(
                    "SELECT account_id, kind, symbol, quantity, amount FROM transactions"
                    " WHERE account_id = ANY(%s) AND day > %s", (list(accounts), on)):
                cash[acc] -= CASH_SIGN[kind] * amount
                if kind in QTY_SIGN:
                    qty[(acc, sym)] = qty.get((acc, sym), Decimal(0)) - QTY_SIGN[kind] * q
                    basis.setdefault((acc, sym), Decimal(0))
        symbols = sorted({s for (_, s), q in qty.items() if q})
        info = {r[0]: r[1:] for r in conn.execute(
            "SELECT symbol, coalesce(name, symbol), coalesce(asset_class, 'unclassified'), coalesce(sector, 'unclassified')"
            " FROM securities WHERE symbol = ANY(%s)", (symbols,))}
        prices = {r[0]: r[1:] for r in conn.execute(
            "SELECT DISTINCT ON (symbol) symbol, close, day FROM prices WHERE symbol = ANY(%s) AND day <= %s"
            " ORDER BY symbol, day DESC", (symbols, on or date.max))}
    positions = [Position(acc, sym, *info[sym], q, basis[(acc, sym)], *prices.get(sym, (None, None)))
                 for (acc, sym), q in sorted(qty.items()) if q]
    return Book(scope.clients, accounts, positions, cash, on, whole=scope.accounts is None)


@dataclass
class PeriodReturn:
    start: date
    end: date
    start_value: Decimal
    end_value: Decimal
    net_flows: Decimal       # deposits minus withdrawals within the period
    rate: float              # Modified Dietz: gain over time-weighted capital
    book: Book               # the books at the end of the period: whose figures these are


def period_return(db, principal: str, scope: Scope, start: date, end: date) -> PeriodReturn:
    """The Modified Dietz return from ``start`` to ``end``: (V1 - V0 - F) / (V0 + sum w_i F_i),
    each external flow F_i weighted by the share of the period it was invested."""
    v0 = book(db, principal, scope, start).total
    last = book(db, principal, scope, end)
    v1 = last.total
    with db.session(principal) as conn:
        flows = conn.execute(
            f"SELECT day, kind, amount FROM transactions WHERE account_id IN ({_SCOPED_ACCOUNTS})"
            " AND kind IN ('deposit', 'withdrawal') AND day > %s AND day <= %s",
            (scope.client_ids, scope.accounts, scope.accounts, start, end)).fetchall()
    days = max((end - start).days, 1)
    net = sum((EXTERNAL[k] * a for _, k, a in flows), Decimal(0))
    weighted = sum((EXTERNAL[k] * a * Decimal((end - d).days) / days for d, k, a in flows), Decimal(0))
    base = v0 + weighted
    rate = float((v1 - v0 - net) / base) if base else 0.0
    return PeriodReturn(start, end, v0, v1, net, rate, last)

"""The advisor's tools: portfolio value, allocation, concentration, period return,
unrealized gain/loss, what-if rebalancing and security quotes. Every figure comes from SQL
and Python over the real tables, run as the asking principal; the model only phrases it."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

from shared.plugins import tool_provider
from shared.tools import ToolCall, ToolParts, ToolResult

from . import portfolio as pf
from .references import Resolver, possessive

CONCENTRATION_LIMIT = 0.20   # one position above this share of the portfolio is flagged


def money(x: Decimal) -> str:
    sign = "-" if x < 0 else ""
    return f"{sign}${abs(x):,.2f}"


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


@dataclass
class PortfolioTool:
    """A tool over the asking principal's own portfolios (or, for an advisor, one client's)."""

    name: str
    description: str
    compute: Callable[["PortfolioTool", ToolCall, pf.Scope], ToolResult]
    db: object

    def run(self, call: ToolCall) -> ToolResult:
        scope, answer = self.target(call)
        return answer or self.compute(self, call, scope)

    def target(self, call: ToolCall) -> tuple[pf.Scope | None, ToolResult | None]:
        """Whose books: the visible client or accounts the question names, else the
        principal's own; an advisor of several is asked which. A reference to anyone or
        anything the principal may not see is refused, in the same words whether or not it
        exists; an account id nobody has is said to be unknown."""
        resolver = Resolver(self.db, call.principal)
        ref, visible = resolver.resolve(call.question), resolver.visible
        own = [c for c in visible if c.principal == call.principal]
        if ref.unknown:
            yours = ", ".join(sorted(a for a, _ in resolver.accounts.values())) or "none"
            return None, self._final(f"I don't know an account or client {ref.unknown}. The accounts you can ask "
                                     f"about: {yours}.")
        if ref.refused or ref.others and (own or not visible):
            return None, self._refusal(ref.refused)
        if len(ref.clients) > 1:
            return None, self._final(f"One client at a time, please: you named {_names(ref.clients)}.")
        if ref.clients:
            return pf.Scope(ref.clients, ref.accounts or None), None
        if not visible:
            return None, self._final("You have no portfolio I can see. Sign in as a client (or as their advisor) to "
                                     "ask about holdings, allocation, returns or gains.")
        if own or len(visible) == 1:
            return pf.Scope(own or visible), None
        return None, self._final(f"Which client do you mean? You advise: {_names(visible)}. Name one in your "
                                 "question.")

    def _final(self, text: str) -> ToolResult:
        return ToolResult(self.name, "Portfolio access", text, final=True)

    def _refusal(self, subject: str | None) -> ToolResult:
        which = f", and that does not include {subject}" if subject else ""
        return self._final(f"I can only discuss portfolios you are authorised to see{which}. I can't share anything "
                           "about other people's accounts.")


def _names(clients: list[pf.Client]) -> str:
    return ", ".join(c.name for c in clients[:-1]) + (" and " if len(clients) > 1 else "") + clients[-1].name


def whose(b: pf.Book) -> str:
    """Whose figures, from the books that produced them: "Alice Ng's portfolio (2 accounts)"
    or "Alice Ng's account A-ALICE-TAX (Alice taxable brokerage)"."""
    owner = possessive(_names(b.clients))
    if b.whole:
        return f"{owner} portfolio ({len(b.accounts)} account{'s' if len(b.accounts) != 1 else ''})"
    accounts = ", ".join(f"{a} ({name})" for a, name in b.accounts.items())
    return f"{owner} account{'s' if len(b.accounts) != 1 else ''} {accounts}"


def _owner(b: pf.Book) -> str | None:
    """The login whose figures these are (None: several clients' together)."""
    return b.clients[0].principal if len(b.clients) == 1 else None


def _current(tool: PortfolioTool, call: ToolCall, scope: pf.Scope) -> pf.Book:
    return pf.book(tool.db, call.principal, scope, call.as_of)


def _about(b: pf.Book, tool: str, title: str, summary: str, figures: list[tuple[str, str]], data: dict,
           as_of=None) -> ToolResult:
    """A result whose title and sentence say whose figures they are ("{subject}" in both),
    taken from the books that produced the figures."""
    subject = whose(b)
    said = summary.replace("{subject}", subject)
    return ToolResult(tool, title.replace("{subject}", subject), said[:1].upper() + said[1:], figures,
                      as_of or b.as_of, data=data, owner=_owner(b))


def value(tool, call, scope) -> ToolResult:
    b = _current(tool, call, scope)
    per_account = {}
    for p in b.positions:
        per_account[p.account_id] = per_account.get(p.account_id, Decimal(0)) + p.value
    figures = [(f"{b.accounts[a]}", money(per_account.get(a, Decimal(0)) + b.cash[a])) for a in b.accounts]
    figures += [("Cash (all accounts)", money(sum(b.cash.values(), Decimal(0)))), ("Total value", money(b.total))]
    holdings = [(f"{p.symbol} ({p.name}), {p.quantity.normalize():f} units at {money(p.price or 0)}", money(p.value))
                for p in sorted(b.positions, key=lambda p: -p.value)]
    return _about(b, "value", "Value of {subject}", f"{{subject}} is worth {money(b.total)}.", figures + holdings,
                  {"total": float(b.total)})


def allocation(tool, call, scope) -> ToolResult:
    b = _current(tool, call, scope)
    total = b.total or Decimal(1)
    classes, sectors = b.by("asset_class"), b.by("sector")
    figures = [(f"Asset class: {k}", f"{pct(float(v / total))} ({money(v)})") for k, v in classes.items()]
    figures += [(f"Sector: {k}", f"{pct(float(v / total))}") for k, v in sectors.items() if k != "cash"]
    top = next(iter(classes.items()))
    return _about(b, "allocation", "Allocation of {subject}",
                  f"the largest asset class in {{subject}} is {top[0]} at {pct(float(top[1] / total))} of "
                  f"{money(b.total)}.", figures,
                  {"asset_class": {k: float(v / total) for k, v in classes.items()},
                   "sector": {k: float(v / total) for k, v in sectors.items()}, "total": float(b.total)})


def concentration(tool, call, scope) -> ToolResult:
    b = _current(tool, call, scope)
    total = b.total or Decimal(1)
    by_symbol: dict[str, Decimal] = {}
    for p in b.positions:
        by_symbol[p.symbol] = by_symbol.get(p.symbol, Decimal(0)) + p.value
    weights = sorted(((s, float(v / total)) for s, v in by_symbol.items()), key=lambda kv: -kv[1])
    hhi = sum(w * w for _, w in weights)
    over = [s for s, w in weights if w > CONCENTRATION_LIMIT]
    figures = [(f"Position {s}", pct(w)) for s, w in weights[:5]]
    figures += [("Largest 3 positions together", pct(sum(w for _, w in weights[:3]))),
                ("Herfindahl index (1 = one position)", f"{hhi:.3f}"),
                (f"Positions above {pct(CONCENTRATION_LIMIT)}", ", ".join(over) or "none")]
    verdict = (f"{', '.join(over)} exceed{'s' if len(over) == 1 else ''} {pct(CONCENTRATION_LIMIT)} of the portfolio"
               if over else f"no single position exceeds {pct(CONCENTRATION_LIMIT)} of the portfolio")
    return _about(b, "concentration", "Concentration of {subject}",
                  f"the largest position in {{subject}} is {weights[0][0]} at {pct(weights[0][1])}; {verdict}.",
                  figures, {"weights": dict(weights), "hhi": hhi, "over_limit": over})


def gains(tool, call, scope) -> ToolResult:
    b = _current(tool, call, scope)
    rows = [(p.symbol, p.value - p.cost_basis, p.cost_basis) for p in b.positions]
    total = sum((g for _, g, _ in rows), Decimal(0))
    basis = sum((c for _, _, c in rows), Decimal(0))
    figures = [(f"{s} (cost {money(c)})", f"{money(g)} ({pct(float(g / c)) if c else 'n/a'})")
               for s, g, c in sorted(rows, key=lambda r: -r[1])]
    figures.append(("Total unrealized gain/loss", f"{money(total)} on cost {money(basis)}"))
    word = "gain" if total >= 0 else "loss"
    return _about(b, "gains", "Unrealized gains of {subject}",
                  f"{{subject}} shows an unrealized {word} of {money(abs(total))} on a cost basis of {money(basis)}.",
                  figures, {"total": float(total), "by_symbol": {s: float(g) for s, g, _ in rows}})


def _period(question: str, end: date) -> tuple[date, str]:
    q = question.lower()
    if re.search(r"\b(ytd|year to date|this year)\b", q):
        return date(end.year, 1, 1) - timedelta(days=1), "year to date"
    m = re.search(r"\b(?:last|past)\s+(\d+)?\s*(day|week|month|year)s?\b", q)
    if m:
        n, unit = int(m.group(1) or 1), m.group(2)
        days = {"day": 1, "week": 7, "month": 30.44, "year": 365.25}[unit] * n
        return end - timedelta(days=round(days)), f"last {n} {unit}{'s' if n > 1 else ''}"
    m = re.search(r"\bsince\s+(\d{4}-\d{2}-\d{2})\b", q)
    if m:
        return date.fromisoformat(m.group(1)), f"since {m.group(1)}"
    return end - timedelta(days=365), "last 12 months"


def performance(tool, call, scope) -> ToolResult:
    asked_year = re.search(r"\b(?:in|during|for)\s+((?:19|20)\d{2})\b", call.question)
    end = call.as_of or pf.latest_day(tool.db, call.principal, scope) or call.today
    if asked_year:
        year = int(asked_year.group(1))
        start, end, label = date(year - 1, 12, 31), min(date(year, 12, 31), end), f"in {year}"
    else:
        start, label = _period(call.question, end)
    r = pf.period_return(tool.db, call.principal, scope, start, end)
    gain = r.end_value - r.start_value - r.net_flows
    figures = [("Period", f"{start.isoformat()} to {end.isoformat()}"), ("Value at start", money(r.start_value)),
               ("Value at end", money(r.end_value)), ("Net deposits minus withdrawals", money(r.net_flows)),
               ("Investment gain", money(gain)), ("Return (Modified Dietz)", pct(r.rate))]
    return _about(r.book, "performance", f"Return of {{subject}}, {label}",
                  f"{{subject}} returned {pct(r.rate)} {label} ({start.isoformat()} to {end.isoformat()}), an "
                  f"investment gain of {money(gain)}.", figures,
                  {"rate": r.rate, "start": start.isoformat(), "end": end.isoformat(),
                   "start_value": float(r.start_value), "end_value": float(r.end_value),
                   "net_flows": float(r.net_flows)}, as_of=end)


_CLASS_WORDS = {"equity": "equity", "equities": "equity", "stock": "equity", "stocks": "equity", "bond": "bond",
                "bonds": "bond", "cash": "cash", "real estate": "real estate", "reits": "real estate",
                "commodity": "commodity", "commodities": "commodity", "gold": "commodity"}


def targets_in(question: str) -> dict[str, float]:
    """Target weights: "60/40" (equity/bond) or "60% stocks, 30% bonds, 10% cash"."""
    q = question.lower()
    out = {}
    for share, word in re.findall(r"(\d{1,3}(?:\.\d+)?)\s*%\s*(?:in\s+|of\s+|to\s+)?(real estate|[a-z]+)", q):
        if word in _CLASS_WORDS:
            out[_CLASS_WORDS[word]] = float(share) / 100
    if not out:
        m = re.search(r"\b(\d{1,3})\s*/\s*(\d{1,3})\b", q)
        if m:
            out = {"equity": int(m.group(1)) / 100, "bond": int(m.group(2)) / 100}
    return out


def rebalance(tool, call, scope) -> ToolResult:
    targets = targets_in(call.question)
    if not targets or abs(sum(targets.values()) - 1) > 0.005:
        return tool._final("Give target weights that add up to 100%, for example \"what if I rebalance to 60% stocks, "
                           "30% bonds and 10% cash?\" or \"rebalance to 60/40\".")
    b = _current(tool, call, scope)
    now = b.by("asset_class")
    classes = list(dict.fromkeys(list(targets) + list(now)))
    figures, trades = [], {}
    for cls in classes:
        have, want = now.get(cls, Decimal(0)), (b.total * Decimal(str(targets.get(cls, 0.0)))).quantize(pf.CENT)
        trades[cls] = want - have
        move = "buy" if want > have else "sell"
        figures.append((f"{cls}: {pct(float(have / b.total))} now, {pct(targets.get(cls, 0.0))} target",
                        f"{move} {money(abs(want - have))}" if want != have else "no change"))
    turnover = sum((abs(t) for t in trades.values()), Decimal(0)) / 2
    figures.append(("Total traded (one side)", money(turnover)))
    return _about(b, "rebalance", "What-if rebalancing of {subject}",
                  f"rebalancing {{subject}}, worth {money(b.total)}, to the target weights would trade "
                  f"{money(turnover)} (hypothetical; no orders are placed).", figures,
                  {"targets": targets, "trades": {k: float(v) for k, v in trades.items()}, "total": float(b.total)})


@dataclass
class QuoteTool:
    """The latest close of securities the question names by ticker (public market data)."""

    db: object
    name: str = "quote"
    description: str = "latest close, 1-week and 1-year change of a ticker"

    def run(self, call: ToolCall) -> ToolResult:
        tickers = set(re.findall(r"\b[A-Z][A-Z0-9.]{1,9}\b", call.question))
        on = call.as_of or date.max
        with self.db.session() as conn:
            rows = conn.execute(
                "SELECT s.symbol, coalesce(s.name, s.symbol), p.day, p.close,"
                " (SELECT close FROM prices WHERE symbol = s.symbol AND day <= p.day - 7 ORDER BY day DESC LIMIT 1),"
                " (SELECT close FROM prices WHERE symbol = s.symbol AND day <= p.day - 365 ORDER BY day DESC LIMIT 1)"
                " FROM securities s CROSS JOIN LATERAL (SELECT day, close FROM prices WHERE symbol = s.symbol"
                " AND day <= %s ORDER BY day DESC LIMIT 1) p WHERE s.symbol = ANY(%s) ORDER BY s.symbol",
                (on, sorted(tickers))).fetchall()
        if not rows:
            return ToolResult(self.name, "Market data", "I have no market data for that security. Name it by its "
                              "ticker symbol, e.g. \"what is the price of TUSM?\"", final=True)
        figures = []
        for sym, name, day, close, week, year in rows:
            figures.append((f"{sym} ({name}) close on {day.isoformat()}", money(close)))
            for label, old in (("1-week change", week), ("1-year change", year)):
                if old:
                    figures.append((f"{sym} {label}", pct(float(close / old - 1))))
        first = rows[0]
        return ToolResult(self.name, "Market data", f"{first[0]} closed at {money(first[3])} on "
                          f"{first[2].isoformat()}.", figures, min(r[2] for r in rows),
                          data={r[0]: float(r[3]) for r in rows})


@tool_provider("finance")
def tools(parts: ToolParts) -> dict:
    """The provider named in finance/config.yaml (tools.provider)."""
    db = parts.db
    found = {"quote": QuoteTool(db)}
    for fn, description in ((value, "total and per-account value with every holding"),
                            (allocation, "allocation by asset class and sector"),
                            (concentration, "largest positions, their combined share, Herfindahl index"),
                            (performance, "period return (Modified Dietz) net of deposits and withdrawals"),
                            (gains, "unrealized gain or loss per position against cost basis"),
                            (rebalance, "what-if rebalancing to target weights: the trades it takes")):
        found[fn.__name__] = PortfolioTool(fn.__name__, description, fn, db)
    return found

"""The advisor's tools: portfolio value, allocation, concentration, period return,
unrealized gain/loss, what-if rebalancing and security quotes. Every figure comes from SQL
and Python over the real tables, run as the asking principal; the model only phrases it."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

from shared.tools import ToolCall, ToolResult

from . import portfolio as pf

CONCENTRATION_LIMIT = 0.20   # one position above this share of the portfolio is flagged
_WORDS_NOT_NAMES = {m.lower() for m in calendar.month_name[1:] + calendar.day_name[:]} | {
    "i", "ira", "roth", "etf", "us", "usd", "what", "how", "show", "give", "tell", "is", "are", "am", "my"}


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
    compute: Callable[["PortfolioTool", ToolCall, list[pf.Client]], ToolResult]
    db: object

    def run(self, call: ToolCall) -> ToolResult:
        clients, refusal = self.target(call)
        return refusal or self.compute(self, call, clients)

    def target(self, call: ToolCall) -> tuple[list[pf.Client], ToolResult | None]:
        """Whose portfolio: a visible client the question names, else the principal's own;
        an advisor of several is asked which. Someone not visible gets the same answer
        whether or not they exist, so nothing leaks."""
        visible = pf.visible_clients(self.db, call.principal)
        q = call.question.lower()
        named = [c for c in visible if c.name.lower() in q or c.name.split()[0].lower() in re.findall(r"[a-z]+", q)]
        if named:
            return named[:1], None
        other = _other_name(call.question, visible, self._security_words())
        if other:
            return [], self._final(f"I can only discuss portfolios you are authorised to see, and none of them is "
                                   f"{other}'s. I can't share anything about other people's accounts.")
        if not visible:
            return [], self._final("You have no portfolio I can see. Sign in as a client (or as their advisor) to "
                                   "ask about holdings, allocation, returns or gains.")
        own = [c for c in visible if c.principal == call.principal]
        if own:
            return own, None
        if len(visible) == 1:
            return visible, None
        names = ", ".join(c.name for c in visible)
        return [], self._final(f"Which client do you mean? You advise: {names}. Name one in your question.")

    def _final(self, text: str) -> ToolResult:
        return ToolResult(self.name, "Portfolio access", text, final=True)

    def _security_words(self) -> set[str]:
        with self.db.session() as conn:
            return {w.lower() for (n,) in conn.execute("SELECT coalesce(name, '') FROM securities") for w in n.split()}


def _other_name(question: str, visible: list[pf.Client], security_words: set[str]) -> str | None:
    """A person the question names ("Bob's", "client Bob", "does Bob hold") who is none of
    the visible clients."""
    known = {w.lower() for c in visible for w in c.name.split()} | _WORDS_NOT_NAMES | security_words
    for m in re.finditer(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b", question):
        words = m.group(1).split()
        if m.start() == 0 and len(words) == 1 and not question[m.end():].startswith("'s"):
            continue  # the sentence's first word is capitalised anyway
        if all(w.lower() not in known for w in words):
            return m.group(1)
    return None


def _whose(clients: list[pf.Client]) -> str:
    return " and ".join(c.name for c in clients)


def _current(tool: PortfolioTool, call: ToolCall, clients: list[pf.Client]) -> pf.Book:
    return pf.book(tool.db, call.principal, clients, call.as_of)


def value(tool, call, clients) -> ToolResult:
    b = _current(tool, call, clients)
    per_account = {}
    for p in b.positions:
        per_account[p.account_id] = per_account.get(p.account_id, Decimal(0)) + p.value
    figures = [(f"{b.accounts[a]}", money(per_account.get(a, Decimal(0)) + b.cash[a])) for a in b.accounts]
    figures += [("Cash (all accounts)", money(sum(b.cash.values(), Decimal(0)))), ("Total value", money(b.total))]
    holdings = [(f"{p.symbol} ({p.name}), {p.quantity.normalize():f} units at {money(p.price or 0)}", money(p.value))
                for p in sorted(b.positions, key=lambda p: -p.value)]
    return ToolResult("value", f"Value of {_whose(clients)}'s portfolio",
                      f"{_whose(clients)}'s portfolio is worth {money(b.total)} across {len(b.accounts)} account(s).",
                      figures + holdings, b.as_of, data={"total": float(b.total)})


def allocation(tool, call, clients) -> ToolResult:
    b = _current(tool, call, clients)
    total = b.total or Decimal(1)
    classes, sectors = b.by("asset_class"), b.by("sector")
    figures = [(f"Asset class: {k}", f"{pct(float(v / total))} ({money(v)})") for k, v in classes.items()]
    figures += [(f"Sector: {k}", f"{pct(float(v / total))}") for k, v in sectors.items() if k != "cash"]
    top = next(iter(classes.items()))
    return ToolResult("allocation", f"Allocation of {_whose(clients)}'s portfolio",
                      f"{_whose(clients)}'s largest asset class is {top[0]} at {pct(float(top[1] / total))} of "
                      f"{money(b.total)}.", figures, b.as_of,
                      data={"asset_class": {k: float(v / total) for k, v in classes.items()},
                            "sector": {k: float(v / total) for k, v in sectors.items()}, "total": float(b.total)})


def concentration(tool, call, clients) -> ToolResult:
    b = _current(tool, call, clients)
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
    return ToolResult("concentration", f"Concentration of {_whose(clients)}'s portfolio",
                      f"The largest position is {weights[0][0]} at {pct(weights[0][1])}; {verdict}.",
                      figures, b.as_of, data={"weights": dict(weights), "hhi": hhi, "over_limit": over})


def gains(tool, call, clients) -> ToolResult:
    b = _current(tool, call, clients)
    rows = [(p.symbol, p.value - p.cost_basis, p.cost_basis) for p in b.positions]
    total = sum((g for _, g, _ in rows), Decimal(0))
    basis = sum((c for _, _, c in rows), Decimal(0))
    figures = [(f"{s} (cost {money(c)})", f"{money(g)} ({pct(float(g / c)) if c else 'n/a'})")
               for s, g, c in sorted(rows, key=lambda r: -r[1])]
    figures.append(("Total unrealized gain/loss", f"{money(total)} on cost {money(basis)}"))
    word = "gain" if total >= 0 else "loss"
    return ToolResult("gains", f"Unrealized gains of {_whose(clients)}'s portfolio",
                      f"{_whose(clients)}'s holdings show an unrealized {word} of {money(abs(total))} on a cost basis "
                      f"of {money(basis)}.", figures, b.as_of,
                      data={"total": float(total), "by_symbol": {s: float(g) for s, g, _ in rows}})


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


def performance(tool, call, clients) -> ToolResult:
    asked_year = re.search(r"\b(?:in|during|for)\s+((?:19|20)\d{2})\b", call.question)
    end = call.as_of or pf.latest_day(tool.db, call.principal, [c.client_id for c in clients]) or call.today
    if asked_year:
        year = int(asked_year.group(1))
        start, end, label = date(year - 1, 12, 31), min(date(year, 12, 31), end), f"in {year}"
    else:
        start, label = _period(call.question, end)
    r = pf.period_return(tool.db, call.principal, clients, start, end)
    gain = r.end_value - r.start_value - r.net_flows
    figures = [("Period", f"{start.isoformat()} to {end.isoformat()}"), ("Value at start", money(r.start_value)),
               ("Value at end", money(r.end_value)), ("Net deposits minus withdrawals", money(r.net_flows)),
               ("Investment gain", money(gain)), ("Return (Modified Dietz)", pct(r.rate))]
    return ToolResult("performance", f"Return of {_whose(clients)}'s portfolio, {label}",
                      f"{_whose(clients)}'s portfolio returned {pct(r.rate)} {label} ({start.isoformat()} to "
                      f"{end.isoformat()}), an investment gain of {money(gain)}.", figures, end,
                      data={"rate": r.rate, "start": start.isoformat(), "end": end.isoformat(),
                            "start_value": float(r.start_value), "end_value": float(r.end_value),
                            "net_flows": float(r.net_flows)})


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


def rebalance(tool, call, clients) -> ToolResult:
    targets = targets_in(call.question)
    if not targets or abs(sum(targets.values()) - 1) > 0.005:
        return tool._final("Give target weights that add up to 100%, for example \"what if I rebalance to 60% stocks, "
                           "30% bonds and 10% cash?\" or \"rebalance to 60/40\".")
    b = _current(tool, call, clients)
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
    return ToolResult("rebalance", f"What-if rebalancing of {_whose(clients)}'s portfolio",
                      f"Rebalancing {money(b.total)} to the target weights would trade {money(turnover)} "
                      f"(hypothetical; no orders are placed).", figures, b.as_of,
                      data={"targets": targets, "trades": {k: float(v) for k, v in trades.items()},
                            "total": float(b.total)})


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


def tools(runtime) -> dict:
    """The provider named in finance/config.yaml (tools.provider)."""
    db = runtime.db
    found = {"quote": QuoteTool(db)}
    for fn, description in ((value, "total and per-account value with every holding"),
                            (allocation, "allocation by asset class and sector"),
                            (concentration, "largest positions, their combined share, Herfindahl index"),
                            (performance, "period return (Modified Dietz) net of deposits and withdrawals"),
                            (gains, "unrealized gain or loss per position against cost basis"),
                            (rebalance, "what-if rebalancing to target weights: the trades it takes")):
        found[fn.__name__] = PortfolioTool(fn.__name__, description, fn, db)
    return found

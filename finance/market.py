"""Market data: the price-feed importer (CSV or JSON: symbol, date, close, optional open,
high, low, volume, name, asset_class, sector, currency) and a seeded synthetic feed.

The importer validates the whole file before it writes, then upserts in one transaction:
re-running it on the same file changes nothing, a newer file adds its days, corrected
closes replace the old ones, and every earlier day is kept."""
from __future__ import annotations

import csv
import gzip
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterator

from shared.ingest.importers import DatasetError, read_records

SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.-]{0,14}$")
NUMBERS = ("close", "open", "high", "low")
TEXTS = ("name", "asset_class", "sector", "currency")
COLUMNS = ("symbol", "day", *NUMBERS, "volume", *TEXTS)


class MarketDataError(DatasetError):
    """The feed cannot be imported; nothing was written. The message lists the bad rows."""


@dataclass
class ImportStats:
    rows: int
    inserted: int
    changed: int
    symbols: int
    first_day: date | None
    last_day: date | None

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.changed

    def __str__(self) -> str:
        span = f"{self.first_day} to {self.last_day}" if self.first_day else "no days"
        return (f"{self.rows} rows for {self.symbols} symbols ({span}): {self.inserted} new, {self.changed} changed, "
                f"{self.unchanged} unchanged")


def _raw_rows(path: Path) -> Iterator[tuple[int, dict]]:
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith((".csv", ".json", ".jsonl")):
        raise MarketDataError(f"{path}: a price feed is .csv, .json or .jsonl (optionally .gz)")
    is_csv = name.endswith(".csv")
    try:
        # Line numbers for error messages: a CSV's first record is line 2, under its header.
        yield from enumerate(read_records(path), start=2 if is_csv else 1)
    except UnicodeDecodeError as e:
        raise MarketDataError(f"{path}: not UTF-8 text ({e.reason})" if is_csv else f"{path}: not valid JSON ({e})") from None
    except json.JSONDecodeError as e:
        raise MarketDataError(f"{path}: not valid JSON ({e})") from None


def _row(raw: dict) -> tuple:
    """One validated row in COLUMNS order; raises ValueError naming the bad field."""
    if not isinstance(raw, dict):
        raise ValueError("not an object with symbol, date and close")
    row = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k}
    symbol = str(row.get("symbol") or "").upper()
    if not SYMBOL_RE.match(symbol):
        raise ValueError(f"symbol {row.get('symbol')!r} is not a ticker")
    try:
        day = date.fromisoformat(str(row.get("date") or row.get("day") or ""))
    except ValueError:
        raise ValueError(f"date {row.get('date')!r} is not YYYY-MM-DD") from None
    values = []
    for key in NUMBERS:
        v = row.get(key)
        if v in (None, ""):
            if key == "close":
                raise ValueError("close is missing")
            values.append(None)
            continue
        try:
            number = Decimal(str(v))
        except InvalidOperation:
            raise ValueError(f"{key} {v!r} is not a number") from None
        if not number.is_finite() or number <= 0:
            raise ValueError(f"{key} {v!r} must be a positive number")
        values.append(number)
    volume = row.get("volume")
    try:
        volume = int(float(volume)) if volume not in (None, "") else None
    except ValueError:
        raise ValueError(f"volume {volume!r} is not a number") from None
    texts = [str(row[k]) if row.get(k) not in (None, "") else None for k in TEXTS]
    return (symbol, day, *values, volume, *texts)


def read_feed(path: Path, max_errors: int = 5) -> list[tuple]:
    """Every row of the feed, validated; the last row of a repeated (symbol, day) wins."""
    path = Path(path)
    if not path.is_file():
        raise MarketDataError(f"{path}: no such file")
    rows: dict[tuple[str, date], tuple] = {}
    errors = []
    for line, raw in _raw_rows(path):
        try:
            row = _row(raw)
        except ValueError as e:
            errors.append(f"row {line}: {e}")
            if len(errors) >= max_errors:
                break
            continue
        rows[(row[0], row[1])] = row
    if errors:
        raise MarketDataError(f"{path}: nothing imported; " + "; ".join(errors))
    if not rows:
        raise MarketDataError(f"{path}: no price rows")
    return list(rows.values())


def update_market(db, path: Path, progress: bool = False) -> ImportStats:
    """Upsert the feed at ``path`` (owner connection, one transaction) and log the run."""
    from tqdm import tqdm

    rows = read_feed(path)
    source = str(Path(path).resolve())
    cols = ", ".join(COLUMNS)
    with db.owner_session() as conn:
        conn.execute(f"CREATE TEMP TABLE feed ({_TEMP_COLUMNS}) ON COMMIT DROP")
        with conn.cursor().copy(f"COPY feed ({cols}) FROM STDIN") as copy:
            for row in tqdm(rows, desc="market data", unit="row", disable=not progress, mininterval=0.5):
                copy.write_row(row)
        conn.execute(
            "INSERT INTO securities (symbol, name, asset_class, sector, currency)"
            " SELECT DISTINCT ON (symbol) symbol, name, asset_class, sector, coalesce(currency, 'USD') FROM feed"
            " ORDER BY symbol, (name IS NULL), day DESC"
            " ON CONFLICT (symbol) DO UPDATE SET name = coalesce(EXCLUDED.name, securities.name),"
            " asset_class = coalesce(EXCLUDED.asset_class, securities.asset_class),"
            " sector = coalesce(EXCLUDED.sector, securities.sector), updated_at = now()"
            " WHERE (EXCLUDED.name, EXCLUDED.asset_class, EXCLUDED.sector) IS DISTINCT FROM"
            " (securities.name, securities.asset_class, securities.sector)")
        # xmax = 0 marks a freshly inserted row; a row whose values did not change is skipped.
        written = conn.execute(
            "INSERT INTO prices (symbol, day, close, open, high, low, volume, source)"
            " SELECT symbol, day, close, open, high, low, volume, %s FROM feed"
            " ON CONFLICT (symbol, day) DO UPDATE SET close = EXCLUDED.close, open = EXCLUDED.open,"
            " high = EXCLUDED.high, low = EXCLUDED.low, volume = EXCLUDED.volume, source = EXCLUDED.source,"
            " imported_at = now()"
            " WHERE (prices.close, prices.open, prices.high, prices.low, prices.volume) IS DISTINCT FROM"
            " (EXCLUDED.close, EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.volume)"
            " RETURNING (xmax = 0)", (source,)).fetchall()
        inserted = sum(1 for (new,) in written if new)
        days = [r[1] for r in rows]
        stats = ImportStats(len(rows), inserted, len(written) - inserted, len({r[0] for r in rows}), min(days), max(days))
        conn.execute("INSERT INTO market_imports (source, rows_read, inserted, changed, first_day, last_day)"
                     " VALUES (%s, %s, %s, %s, %s, %s)",
                     (source, stats.rows, stats.inserted, stats.changed, stats.first_day, stats.last_day))
    return stats


_TEMP_COLUMNS = ("symbol text, day date, close numeric, open numeric, high numeric, low numeric, volume bigint,"
                 " name text, asset_class text, sector text, currency text")


# ---- the synthetic feed ----------------------------------------------------------------
CLASSES = {  # asset class -> (sectors, yearly drift, yearly volatility, share of the universe)
    "equity": (["technology", "health care", "financials", "energy", "industrials", "consumer", "utilities"], 0.07, 0.28, 0.7),
    "bond": (["government", "corporate", "municipal"], 0.03, 0.06, 0.2),
    "real estate": (["real estate"], 0.05, 0.2, 0.05),
    "commodity": (["commodities"], 0.02, 0.22, 0.05),
}


def business_days(start: date, end: date, weekly: bool = False) -> list[date]:
    days, d = [], start
    while d <= end:
        if d.weekday() < 5 and (not weekly or d.weekday() == 4):
            days.append(d)
        d += timedelta(days=1)
    return days


def _tickers(rng: random.Random, n: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < n:
        seen.add("".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.choice((3, 4)))))
    return sorted(seen)


def synthetic_feed(symbols: int = 300, years: float = 3.0, end: date | None = None, seed: int = 0,
                   weekly: bool = False) -> Iterator[dict]:
    """Geometric Brownian motion closes with a shared market factor (so assets correlate as
    real ones do), per asset class drift and volatility, daily open/high/low/volume."""
    rng = random.Random(seed)
    end = end or date.today()
    days = business_days(end - timedelta(days=round(365.25 * years)), end, weekly)
    step = (5 if weekly else 1) / 252  # years per step, in trading days
    classes = list(CLASSES)
    shares = [CLASSES[c][3] for c in classes]
    universe = []
    for ticker in _tickers(rng, symbols):
        cls = rng.choices(classes, shares)[0]
        sectors, drift, vol, _ = CLASSES[cls]
        universe.append((ticker, cls, rng.choice(sectors), drift, vol * rng.uniform(0.6, 1.4),
                         rng.uniform(0.3, 1.0), rng.uniform(10, 400)))
    market = [rng.gauss(0, 1) for _ in days]
    for ticker, cls, sector, drift, vol, beta, price in universe:
        name = f"{ticker.title()} {'Corp' if cls == 'equity' else cls.title() + ' Fund'}"
        for day, m in zip(days, market):
            shock = beta * m + math.sqrt(1 - beta**2) * rng.gauss(0, 1)
            open_ = price
            price *= math.exp((drift - vol**2 / 2) * step + vol * math.sqrt(step) * shock)
            spread = abs(rng.gauss(0, vol * math.sqrt(step) / 2))
            yield {"symbol": ticker, "date": day.isoformat(), "open": f"{open_:.4f}", "close": f"{price:.4f}",
                   "high": f"{max(open_, price) * (1 + spread):.4f}", "low": f"{min(open_, price) * (1 - spread):.4f}",
                   "volume": int(rng.lognormvariate(12, 1)), "name": name, "asset_class": cls, "sector": sector,
                   "currency": "USD"}


def write_feed(rows: Iterator[dict], out: Path) -> int:
    """Write feed rows as CSV (gzip when ``out`` ends in .gz); returns the row count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["symbol", "date", "open", "high", "low", "close", "volume", "name", "asset_class", "sector", "currency"]
    n = 0
    opener = gzip.open if out.name.endswith(".gz") else open
    with opener(out, "wt", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


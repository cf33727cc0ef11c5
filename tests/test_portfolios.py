"""The advisor's live data on the real database: the market-feed importer (idempotent,
history kept, bad feeds write nothing), client books behind row-level security (direct SQL
under the application role, retrieval, the chat), logins, and portfolio figures checked
against values computed here independently from the sample CSVs."""
from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from finance import books
from finance.market import synthetic_feed, write_feed
from shared.auth import Users, hash_password, verify_password
from shared.chat.dates import mentioned_date
from shared.tools import ToolCall

from .test_cli import run

SAMPLE = Path(books.__file__).parent
TODAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def rt(db):
    from assistants.domains import samples_dir, settings_for
    from shared.runtime import Runtime

    runtime = Runtime(settings_for("finance"), db=db)
    assert not runtime.ingestor().run([samples_dir("finance")]).failed
    books.prepare(runtime)
    return runtime


@pytest.fixture(scope="module")
def tools(rt):
    from finance.tools import tools

    return tools(rt)


def csv_rows(name: str) -> list[dict]:
    with open(SAMPLE / name, newline="") as f:
        return list(csv.DictReader(f))


# ---- independent reference values: plain Python over the sample CSVs ----------------------
def closes() -> dict[str, list[tuple[date, float]]]:
    out = defaultdict(list)
    for r in csv_rows("market_data/sample_prices.csv"):
        out[r["symbol"]].append((date.fromisoformat(r["date"]), float(r["close"])))
    return out


def classes() -> dict[str, str]:
    return {r["symbol"]: r["asset_class"] for r in csv_rows("market_data/sample_prices.csv") if r["asset_class"]}


def reference_value(accounts: set[str], on: date) -> float:
    """Holdings and cash of ``accounts`` on ``on``: today's, with every later transaction undone."""
    px = closes()
    qty = defaultdict(float)
    for h in csv_rows("portfolios/holdings.csv"):
        if h["account_id"] in accounts:
            qty[h["symbol"]] += float(h["quantity"])
    cash = sum(float(a["cash"]) for a in csv_rows("portfolios/accounts.csv") if a["account_id"] in accounts)
    for t in csv_rows("portfolios/transactions.csv"):
        if t["account_id"] in accounts and date.fromisoformat(t["day"]) > on:
            amount = float(t["amount"])
            cash -= {"deposit": amount, "withdrawal": -amount, "buy": -amount, "sell": amount,
                     "dividend": amount, "fee": -amount}[t["kind"]]
            if t["kind"] == "buy":
                qty[t["symbol"]] -= float(t["quantity"])
            elif t["kind"] == "sell":
                qty[t["symbol"]] += float(t["quantity"])
    return cash + sum(q * [p for d, p in px[s] if d <= on][-1] for s, q in qty.items() if q)


ALICE = {"A-ALICE-TAX", "A-ALICE-IRA"}
LATEST = date(2026, 11, 20)
STALE = (date.today() - LATEST).days > 3  # finance's tools.stale_after_days


@pytest.mark.parametrize("question, tool", [
    ("What is my asset allocation?", "allocation"),
    ("What is Erin's sector breakdown?", "allocation"),
    ("How did my portfolio perform last year?", "performance"),
    ("What was my return in 2025?", "performance"),
    ("How concentrated is my portfolio?", "concentration"),
    ("What are my unrealized gains?", "gains"),
    ("What if I rebalance to 60/40?", "rebalance"),
    ("What does Bob hold?", "value"),
    ("How much is my portfolio worth?", "value"),
    ("What is the price of TUSM?", "quote"),
    ("What is the 401(k) contribution limit for 2026?", None),
    ("When do I have to file my tax return?", None),
    ("How large should an emergency fund be?", None),
    ("What is the price of a house?", None),
])
def test_the_intent_router_picks_the_tool(tools, question, tool):
    from assistants.domains import settings_for
    from shared.tools import ToolBox

    found = ToolBox(settings_for("finance"), tools).match(question)
    assert (found.name if found else None) == tool


def test_portfolio_figures_match_an_independent_computation(tools):
    call = ToolCall("What is my asset allocation?", "alice", TODAY)
    total = reference_value(ALICE, LATEST)
    alloc = tools["allocation"].run(call)
    assert alloc.as_of == LATEST and alloc.data["total"] == pytest.approx(total, abs=0.01)
    by_class = defaultdict(float)
    px, cls = closes(), classes()
    for h in csv_rows("portfolios/holdings.csv"):
        if h["account_id"] in ALICE:
            by_class[cls[h["symbol"]]] += float(h["quantity"]) * px[h["symbol"]][-1][1]
    by_class["cash"] = sum(float(a["cash"]) for a in csv_rows("portfolios/accounts.csv") if a["account_id"] in ALICE)
    for name, v in by_class.items():
        assert alloc.data["asset_class"][name] == pytest.approx(v / total, abs=1e-9)

    gains = tools["gains"].run(call)
    cost = sum(float(h["cost_basis"]) for h in csv_rows("portfolios/holdings.csv") if h["account_id"] in ALICE)
    assert gains.data["total"] == pytest.approx(total - by_class["cash"] - cost, abs=0.01)

    # Modified Dietz over 2025, the flows weighted by the days they were invested.
    start, end = date(2024, 12, 31), date(2025, 12, 31)
    flows = [(date.fromisoformat(t["day"]), float(t["amount"]) * (1 if t["kind"] == "deposit" else -1))
             for t in csv_rows("portfolios/transactions.csv")
             if t["account_id"] in ALICE and t["kind"] in ("deposit", "withdrawal")
             and start < date.fromisoformat(t["day"]) <= end]
    v0, v1 = reference_value(ALICE, start), reference_value(ALICE, end)
    net = sum(f for _, f in flows)
    expected = (v1 - v0 - net) / (v0 + sum(f * (end - d).days / (end - start).days for d, f in flows))
    perf = tools["performance"].run(ToolCall("What was my return in 2025?", "alice", TODAY, date(2025, 12, 31)))
    assert perf.data["start_value"] == pytest.approx(v0, abs=0.01) and perf.data["end_value"] == pytest.approx(v1, abs=0.01)
    assert perf.data["rate"] == pytest.approx(expected, abs=1e-9)

    what_if = tools["rebalance"].run(ToolCall("What if I rebalance to 60% stocks, 30% bonds and 10% cash?", "alice", TODAY))
    assert what_if.data["trades"]["equity"] == pytest.approx(0.6 * total - by_class["equity"], abs=0.01)
    assert what_if.data["trades"]["commodity"] == pytest.approx(-by_class["commodity"], abs=0.01)
    assert sum(what_if.data["trades"].values()) == pytest.approx(0, abs=0.05)

    conc = tools["concentration"].run(call)
    weights = {s: v / total for s, v in ((h["symbol"], float(h["quantity"]) * px[h["symbol"]][-1][1])
                                         for h in csv_rows("portfolios/holdings.csv") if h["account_id"] in ALICE)}
    assert conc.data["weights"] == pytest.approx(weights, abs=1e-9)
    assert conc.data["hhi"] == pytest.approx(sum(w * w for w in weights.values()), abs=1e-9)


def test_row_level_security_under_the_application_role(rt):
    db = rt.db
    s = rt.settings.domain
    assert db.migrate_domain(s.root.name, s.root / s.migrations) == []  # applied once, versioned per domain
    with db.session("alice") as conn:
        assert [r for (r,) in conn.execute("SELECT client_id FROM clients")] == ["C001"]
        assert {r for (r,) in conn.execute("SELECT account_id FROM holdings")} == ALICE
        assert {r for (r,) in conn.execute("SELECT account_id FROM transactions")} == ALICE
        # Even naming Bob's account outright returns nothing.
        assert conn.execute("SELECT * FROM holdings WHERE account_id = 'A-BOB-TAX'").fetchall() == []
    with db.session("carol") as conn:  # an advisor: her two clients, not Dave's
        assert sorted(r for (r,) in conn.execute("SELECT client_id FROM clients")) == ["C001", "C003"]
    with db.session(None) as conn:     # no principal: nothing
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.session("alice") as conn:
            conn.execute("UPDATE holdings SET quantity = 0")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.session("alice") as conn:
            conn.execute("SELECT password_hash FROM users")


def test_another_clients_portfolio_is_refused_through_the_chat(rt):
    engine = rt.chat_engine()
    turn = engine.ask("What does Bob hold in his brokerage account?", principal="alice")
    assert "authorised" in turn.answer and turn.usage["tool"]["final"]
    for leak in ("CNTS", "FABR", "WWRE", "26,282", "Bob joint"):
        assert leak not in turn.answer
    # The same words for a name that does not exist: the refusal says nothing about existence.
    ghost = engine.ask("What does Zed hold in his brokerage account?", principal="alice")
    assert ghost.answer.replace("Zed", "Bob") == turn.answer
    own = engine.ask("What is my asset allocation?", principal="bob")
    assert "Bob Diaz" in own.answer and "Alice" not in own.answer and "**Figures used**" in own.answer
    assert bool(own.warnings) == STALE and all("Market data is as of 2026-11-20" in w for w in own.warnings)


def test_private_documents_stay_out_of_other_principals_retrieval(rt, tmp_path):
    from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

    note = tmp_path / "bob-investment-policy.md"
    note.write_text("# Bob's investment policy statement\n\nBob Diaz wants the Zephyrine growth sleeve kept under "
                    "fifteen percent and no tobacco stocks.\n")
    summary = rt.ingestor(principal="bob").run([note])
    assert not summary.failed
    only = MetadataFilters(filters=[MetadataFilter(key="title", value="Bob's investment policy statement",
                                                   operator=FilterOperator.EQ)])
    as_bob = rt.retriever(principal="bob", filters=only).retrieve("Zephyrine growth sleeve")
    assert as_bob and "Zephyrine" in as_bob[0].node.get_content()
    assert rt.retriever(principal="alice", filters=only).retrieve("Zephyrine growth sleeve") == []
    turn = rt.chat_engine().ask("What does the investment policy say about the Zephyrine growth sleeve?", principal="alice")
    assert all("Zephyrine" not in p.text for p in turn.passages)


def test_market_feed_import_is_idempotent_and_keeps_history(rt, tmp_path):
    feed = tmp_path / "feed.csv"
    rows = list(synthetic_feed(symbols=5, years=0.1, end=TODAY, seed=11))
    rows = [r for r in rows if r["symbol"] not in closes()]
    write_feed(iter(rows), feed)
    first = run("finance", "update-market", str(feed), "--quiet")
    assert first.returncode == 0, first.stderr
    assert f"{len(rows)} new, 0 changed, 0 unchanged" in first.stdout
    assert "0 new, 0 changed" in run("finance", "update-market", str(feed), "--quiet").stdout
    symbol = rows[0]["symbol"]
    rows[0] = {**rows[0], "close": "999.5"}  # a corrected close, and one more day
    rows.append({**rows[-1], "symbol": symbol, "date": (TODAY + timedelta(days=1)).isoformat()})
    write_feed(iter(rows), feed)
    assert "1 new, 1 changed" in run("finance", "update-market", str(feed), "--quiet").stdout
    with rt.db.session("anyone") as conn:
        n, first_close = conn.execute("SELECT count(*), (array_agg(close ORDER BY day))[1] FROM prices WHERE symbol = %s",
                                      (symbol,)).fetchone()
        assert n == sum(r["symbol"] == symbol for r in rows) and float(first_close) == 999.5
        assert conn.execute("SELECT count(*) FROM market_imports WHERE source = %s", (str(feed),)).fetchone()[0] == 3


def test_a_bad_feed_or_book_writes_nothing(rt, tmp_path):
    feed = tmp_path / "bad.csv"
    feed.write_text("symbol,date,close\nQQQA,2026-01-02,10\nQQQA,2026-01-05,-3\nQQQA,2026-13-01,4\n")
    out = run("finance", "update-market", str(feed))
    assert out.returncode == 2 and "row 3: close '-3' must be a positive number" in out.stderr
    assert "row 4: date '2026-13-01' is not YYYY-MM-DD" in out.stderr
    with rt.db.session() as conn:
        assert conn.execute("SELECT count(*) FROM securities WHERE symbol = 'QQQA'").fetchone() == (0,)
    folder = tmp_path / "book"
    folder.mkdir()
    (folder / "clients.csv").write_text("client_id,name,principal,advisor\nC900,New Client,newbie,carol\n")
    (folder / "holdings.csv").write_text("account_id,symbol,quantity,cost_basis\nA-NOPE,TUSM,1,1\n")
    bad = run("finance", "import-books", str(folder))
    assert bad.returncode == 2 and "holdings.csv row 2" in bad.stderr and "nothing was imported" in bad.stderr
    with rt.db.owner_session() as conn:
        assert conn.execute("SELECT count(*) FROM clients WHERE client_id = 'C900'").fetchone() == (0,)


def test_a_synthetic_feed_of_hundreds_of_symbols_loads_and_answers(rt, tmp_path):
    out = tmp_path / "synthetic.csv.gz"
    made = run("finance", "generate-market", str(out), "--symbols", "300", "--years", "3")  # ends today: fresh
    assert made.returncode == 0 and "300 symbols" in made.stdout
    loaded = run("finance", "update-market", str(out), "--quiet")
    assert loaded.returncode == 0 and "for 300 symbols" in loaded.stdout, loaded.stderr
    with rt.db.session() as conn:
        symbol, days = conn.execute("SELECT symbol, count(*) FROM prices WHERE source = %s GROUP BY symbol LIMIT 1",
                                    (str(out),)).fetchone()
    assert days > 700  # three years of business days
    fresh = rt.chat_engine().ask(f"What is the price of {symbol}?", principal="anyone")
    assert f"{symbol}" in fresh.answer and "**Figures used**" in fresh.answer
    assert fresh.warnings == []
    stale = rt.chat_engine().ask("What is the price of TUSM?", principal="anyone")
    assert "as of 2026-11-20" in stale.answer
    assert ("**Warning:** Market data is as of 2026-11-20" in stale.answer) == STALE == bool(stale.warnings)


def test_questions_about_a_date_retrieve_what_was_in_force_then(rt):
    assert mentioned_date("What was the IRA limit in 2025?") == date(2025, 12, 31)
    assert mentioned_date("on 1 March 2026") == date(2026, 3, 1) and mentioned_date("What is the limit?") is None
    engine = rt.chat_engine()
    then = engine.ask("What was the IRA contribution limit in 2025?", principal="anyone")
    titles = {p.title for p in then.passages if p.in_prompt}
    assert "Retirement account contribution limits for 2025" in titles
    assert "Retirement account contribution limits for 2026" not in titles
    now = engine.ask("What is the IRA contribution limit?", principal="anyone")
    assert "Retirement account contribution limits for 2025" not in {p.title for p in now.passages}


def test_logins_are_salted_scrypt_hashes(rt):
    a, b = hash_password("same-password"), hash_password("same-password")
    assert a != b and a.startswith("scrypt$") and verify_password("same-password", a)
    users = Users(rt.db)
    assert users.verify("alice", "alice-demo-pass") and not users.verify("alice", "wrong-password")
    assert not users.verify("nobody", "alice-demo-pass") and not users.verify("Robert'); DROP TABLE users;--", "x")
    users.add("temp-user", "temp-password-1")
    assert users.verify("temp-user", "temp-password-1") and users.disable("temp-user")
    assert not users.verify("temp-user", "temp-password-1")

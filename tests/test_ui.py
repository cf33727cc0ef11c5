"""The finance assistant served as a user gets it: `assistants serve finance`, driven by
headless Debian Chromium (Playwright) and by gradio_client; feedback lands in Postgres."""
from __future__ import annotations

import os
import shutil
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import httpx
import pytest


ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("ASSISTANTS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
CHROMIUM = "/usr/bin/chromium"
QUESTION = "What is the 401(k) employee contribution limit for 2026?"

@contextmanager
def chromium_page(failure_shot: str, height: int = 1000):
    """A page of headless Debian Chromium; if the block fails, a full-page screenshot is
    saved under ARTIFACTS as ``failure_shot``."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": height})
        try:
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure_shot), full_page=True)
            raise
        finally:
            browser.close()


requires_chromium = pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian chromium (apt-get install chromium)")


def feedback_rows(db, message_id: str):
    with db._admin() as conn:
        return conn.execute("SELECT f.rating, m.content, m.principal FROM feedback f JOIN messages m ON m.id = f.message_id"
                            " WHERE f.message_id = %s", (uuid.UUID(message_id),)).fetchall()


def settled_text(locator, timeout_s: float = 120, quiet_s: float = 3) -> str:
    """The streamed answer once it has stopped changing."""
    deadline, last, since = time.time() + timeout_s, None, time.time()
    while time.time() < deadline:
        text = locator.inner_text().strip()
        if text != last:
            last, since = text, time.time()
        elif text and time.time() - since >= quiet_s:
            return text
        time.sleep(0.3)
    raise AssertionError(f"the answer never settled: {last!r}")


LOGIN = ("alice", "alice-demo-pass")  # a demo login from finance/portfolios/users.csv


def sign_in(page, url: str, user: str = LOGIN[0], password: str = LOGIN[1]) -> None:
    page.goto(url)
    page.fill("input[data-testid='textbox']", user)
    page.fill("input[data-testid='password']", password)
    page.get_by_role("button", name="Login").click()


@requires_chromium
def test_browser_chat_sources_and_like(finance_url, db):
    from playwright.sync_api import expect

    with chromium_page("finance-chat-failure.png") as page:
        sign_in(page, finance_url, "alice", "wrong-password")
        expect(page.get_by_text("Incorrect Credentials")).to_be_visible(timeout=30_000)
        sign_in(page, finance_url)
        expect(page.locator("#disclaimer")).to_contain_text("not financial advice")
        expect(page.locator("#footer")).to_contain_text("SmolLM2-135M-Instruct")
        page.fill("#question textarea", QUESTION)
        page.click("#send")
        first = page.locator("#sources .source").first
        expect(first).to_contain_text("Retirement account contribution limits for 2026", timeout=120_000)
        expect(first).to_contain_text("as of 2026-01-01")
        expect(page.locator("#chat .user-row")).to_contain_text(QUESTION)
        answer = settled_text(page.locator("#chat .bot-row").last)
        assert answer
        like = page.locator("#chat button[aria-label='Like']").last
        like.click()
        expect(page.locator("#status")).to_contain_text("feedback recorded", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "finance-chat.png"), full_page=True)
        span = page.locator("#sources .source a").first.get_attribute("href")
        assert "Retirement account contribution limits for 2026" in httpx.get(finance_url + span).text
    with db._admin() as conn:
        got = conn.execute("SELECT f.rating, m.content FROM feedback f JOIN messages m ON m.id = f.message_id"
                           " WHERE m.conversation_id IN (SELECT conversation_id FROM messages WHERE content = %s)"
                           " ORDER BY f.created_at DESC LIMIT 1", (QUESTION,)).fetchall()
    assert got and got[0][0] == 1 and got[0][1].startswith(answer[:20])
    with db._admin() as conn:  # the login is the principal the database saw
        assert conn.execute("SELECT principal FROM messages WHERE content = %s ORDER BY created_at DESC LIMIT 1",
                            (QUESTION,)).fetchone() == ("alice",)


@requires_chromium
def test_browser_portfolio_figures_with_as_of_and_staleness(finance_url):
    from playwright.sync_api import expect

    with chromium_page("finance-portfolio-failure.png") as page:
        sign_in(page, finance_url)
        page.fill("#question textarea", "What is my asset allocation?")
        page.click("#send")
        answer = page.locator("#chat .bot-row").last
        expect(answer).to_contain_text("Figures used", timeout=120_000)
        expect(answer).to_contain_text("Asset class: equity")
        expect(answer).to_contain_text("as of 2026-11-20")
        expect(page.locator("#sources")).to_contain_text("computed from the database")
        if (date.today() - date(2026, 11, 20)).days > 3:  # finance's tools.stale_after_days
            expect(page.locator("#status")).to_contain_text("Market data is as of 2026-11-20")
            expect(answer).to_contain_text("Warning")
        page.screenshot(path=str(ARTIFACTS / "finance-portfolio.png"), full_page=True)


@requires_chromium
def test_review_page_is_for_reviewers_only(finance_url, db):
    from gradio_client import Client
    from playwright.sync_api import expect

    client, tag = Client(finance_url, verbose=False, auth=LOGIN), uuid.uuid4().hex[:6]
    proposals = {}
    for question in ("How large should an emergency fund be?", "What is a Roth IRA?"):
        turn = client.predict(question, None, api_name="/ask")
        proposals[question] = (turn["message_id"], f"A corrected answer to {question} ({tag})")
        client.predict(turn["message_id"], proposals[question][1], api_name="/correct")
    (first_id, first), (second_id, second) = proposals.values()
    edited = second.replace("A corrected", "An edited")
    with chromium_page("finance-review-failure.png") as page:
        sign_in(page, finance_url + "/review")  # alice: a user, not a reviewer
        expect(page.locator("#review-status")).to_contain_text("alice is not a reviewer of finance", timeout=30_000)
        expect(page.get_by_text(tag)).to_have_count(0)
        page.goto(finance_url + "/logout")
        sign_in(page, finance_url + "/review", "rita", "rita-demo-pass")  # a demo reviewer
        expect(page.locator("#review-status")).to_contain_text("pending candidate(s)", timeout=30_000)

        def choose(question: str, proposed: str) -> None:
            page.click("#review-pick input")
            page.get_by_role("option", name=f"corrected · {question}").last.click()
            expect(page.locator("#review-candidate")).to_contain_text(f"user: {question}", timeout=30_000)
            expect(page.locator("#review-answer textarea")).to_have_value(proposed)

        choose("What is a Roth IRA?", second)
        expect(page.locator("#review-candidate")).to_contain_text("by alice")
        page.fill("#review-answer textarea", edited)
        page.click("#review-accept")
        expect(page.locator("#review-status")).to_contain_text("Accepted", timeout=30_000)
        choose("How large should an emergency fund be?", first)
        page.click("#review-reject")
        expect(page.locator("#review-status")).to_contain_text("Rejected", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "finance-review.png"), full_page=True)
    with db._admin() as conn:
        decided = dict(conn.execute("SELECT message_id::text, (status, reviewer, reviewed_answer) FROM training_candidates"
                                    " WHERE message_id = ANY(%s::uuid[])", ([first_id, second_id],)).fetchall())
    assert decided == {first_id: ("rejected", "rita", None), second_id: ("accepted", "rita", edited)}


def test_gradio_client_api(finance_url, db):
    from gradio_client import Client

    with pytest.raises(Exception):
        Client(finance_url, verbose=False, auth=("alice", "not-her-password"))
    client = Client(finance_url, verbose=False, auth=LOGIN)
    turn = client.predict("How large should an emergency fund be?", None, api_name="/ask")
    assert turn["grounded"] and turn["answer"] and turn["disclaimer"].startswith("This is general information")
    assert any(p["title"] == "Building an emergency fund" and p["in_prompt"] for p in turn["passages"])
    follow = client.predict("and where should I keep it?", turn["conversation_id"], api_name="/ask")
    assert follow["conversation_id"] == turn["conversation_id"]
    assert "emergency fund" in follow["retrieval_query"]
    assert client.predict(follow["message_id"], -1, api_name="/feedback") == "recorded"
    assert feedback_rows(db, follow["message_id"])[0][0] == -1
    better = "Keep it in an insured savings account you can reach within a day."
    assert client.predict(follow["message_id"], better, api_name="/correct") == "proposed"
    with db._admin() as conn:  # a correction waits for review, with the question it answers
        assert conn.execute("SELECT kind, question, answer, status, principal FROM training_candidates"
                            " WHERE message_id = %s", (uuid.UUID(follow["message_id"]),)).fetchall() == \
            [("corrected", "and where should I keep it?", better, "pending", "alice")]
    with pytest.raises(Exception, match="no conversation"):
        Client(finance_url, verbose=False, auth=("bob", "bob-demo-pass")).predict(
            "and then?", turn["conversation_id"], api_name="/ask")

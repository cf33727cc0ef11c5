"""The review page (``/review``) of every chat UI: the training candidates its users proposed
(liked answers, corrections), each with its conversation, cited sources, model and adapter,
for a reviewer to accept (editing the answer to train on) or reject.

Behind the login, and more: every handler checks, on the server, that the signed-in login
has the reviewer role for this domain (``assistants users roles NAME --role reviewer``).
Anyone else who opens the page sees why they cannot review, and no candidate.

No ``from __future__ import annotations`` here: Gradio reads the handlers' type hints."""

import html
from typing import Any

from ..auth import Users
from ..db import Database, DatabaseUnavailable
from ..candidates import Candidate, Candidates, ReviewError
from ..settings import Settings

PATH = "/review"


class ReviewDenied(PermissionError):
    """This session may not review this domain; the message says what would let it."""


def _detail(c: Candidate, conversation: list[tuple[str, str]]) -> str:
    """The candidate as HTML, every user-written text escaped."""
    e = html.escape
    turns = "".join(f"<div class='turn {e(role)}'><b>{e(role)}:</b> {e(text)}</div>" for role, text in conversation)
    return (f"<div id='review-candidate'><p><b>{e(c.kind)}</b> by <code>{e(c.principal)}</code> · model "
            f"<code>{e(c.model or 'unknown')}</code> · adapter <code>{e(c.adapter or 'none')}</code> · cited: "
            f"{e(', '.join(c.sources) or 'nothing')}</p><p><b>Question:</b> {e(c.question)}</p>"
            f"<details open><summary>Conversation</summary>{turns}</details></div>")


def add_review_page(app, settings: Settings, db: Database) -> None:
    """Add ``/review`` to the chat UI ``app`` (a ``gr.Blocks``) of the domain of ``settings``,
    whose candidates and reviewers are in ``db``."""
    import gradio as gr

    domain = settings.domain.name
    queue, users = Candidates(db, domain), Users(db)

    def reviewer(request: Any) -> str:
        if not settings.ui.login:
            raise ReviewDenied(f"reviewing in the browser needs the login (ui.login: true); without it use "
                               f"`assistants review {domain}`")
        name = getattr(request, "username", None)
        if not users.can_review(name, domain):
            raise ReviewDenied(f"{name or 'this session'} is not a reviewer of {domain}: an administrator runs "
                               f"`assistants users roles {name or 'NAME'} --role reviewer:{domain}`")
        return name

    def listing(request: Any, note: str = ""):
        """The pending candidates as dropdown choices, the first one shown."""
        try:
            reviewer(request)
            pending = queue.listing("pending")
        except (ReviewDenied, DatabaseUnavailable) as err:
            return gr.update(choices=[], value=None), {}, "", "", f"**Error:** {err}"
        found = {c.id: c for c in pending}
        choices = [(f"{c.kind} · {c.question[:70]}", c.id) for c in pending]
        first = pending[0].id if pending else None
        detail, answer = show(first, found)
        count = f"{len(pending)} pending candidate(s) for {settings.domain.title}."
        return gr.update(choices=choices, value=first), found, detail, answer, f"{note} {count}".strip()

    def show(candidate_id: str | None, found: dict) -> tuple[str, str]:
        c = found.get(candidate_id) if candidate_id else None
        if c is None:
            return "<div id='review-candidate'>Nothing to review.</div>", ""
        return _detail(c, queue.conversation(c.id)), c.answer

    def decide(accept: bool):
        def handler(candidate_id: str | None, answer: str, found: dict, request: gr.Request):
            if not candidate_id:
                return listing(request, "**Error:** choose a candidate first.")
            try:
                name = reviewer(request)
                edited = (answer or "").strip()
                if accept and not edited:
                    raise ValueError("the answer to train on is empty: write one, or reject the candidate")
                proposed = found[candidate_id].answer if candidate_id in found else None
                queue.review(candidate_id, name, accept=accept, answer=edited if accept and edited != proposed else None)
            except (ReviewDenied, ReviewError, ValueError, DatabaseUnavailable) as err:
                return listing(request, f"**Error:** {err}")
            return listing(request, f"{'Accepted' if accept else 'Rejected'} {candidate_id}.")
        return handler

    with app.route("Review", PATH, show_in_navbar=False):
        gr.Markdown(f"# Review training candidates: {settings.domain.title}\nAccepted examples join the next "
                    f"`assistants train {domain}` run, through the data pipeline (cleaning, PII scrub, de-duplication).")
        status = gr.Markdown("", elem_id="review-status")
        found = gr.State({})
        with gr.Row():
            pick = gr.Dropdown(label="Pending candidates", choices=[], elem_id="review-pick", scale=4)
            refresh = gr.Button("Refresh", elem_id="review-refresh", scale=1)
        detail = gr.HTML("", elem_id="review-detail")
        answer = gr.Textbox(label="Answer to train on (edit before accepting)", lines=6, elem_id="review-answer")
        with gr.Row():
            accept = gr.Button("Accept", variant="primary", elem_id="review-accept")
            reject = gr.Button("Reject", variant="stop", elem_id="review-reject")
        shown = [pick, found, detail, answer, status]
        def reload(request: gr.Request):
            return listing(request)

        refresh.click(reload, None, shown, api_name=False)
        app.load(reload, None, shown, api_name=False)  # inside the route: this page's load
        # select, not input: the dropdown also fires input when it loses focus, which would
        # overwrite an answer the reviewer is editing
        pick.select(show, [pick, found], [detail, answer], api_name=False)
        accept.click(decide(True), [pick, answer, found], shown, api_name=False)
        reject.click(decide(False), [pick, answer, found], shown, api_name=False)

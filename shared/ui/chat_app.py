"""The Gradio chat UI factory: every assistant's app is built here from its config.

No ``from __future__ import annotations`` here: ``gr.api`` reads the type hints at runtime."""

import logging
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.service import DocumentService
from ..chat import ChatEngine, UnknownConversation
from ..db import Database, DatabaseUnavailable
from ..generation import GenerationError
from ..settings import Settings
from .render import sources_panel
from .review_page import add_review_page

log = logging.getLogger(__name__)
# Errors a user can act on are shown as they are; anything else is logged and summarised.
USER_ERRORS = (ValueError, UnknownConversation, GenerationError, DatabaseUnavailable)


def principal_of(request: Any) -> str:
    """The login name under auth; otherwise each browser (or API client) session is its own
    anonymous principal, so nobody sees anyone else's conversations."""
    user = getattr(request, "username", None)
    return user if user else f"anon-{getattr(request, 'session_hash', None) or 'local'}"


def training_note(settings: Settings, db: Database, g: dict) -> str | None:
    """What serves while the domain's adapter trains in the background (None when no job
    is unfinished, or the database cannot say)."""
    from ..finetune.jobs import serving_note

    try:
        return serving_note(settings, g["adapter"], db)
    except DatabaseUnavailable:
        return None


def _footer(settings: Settings, db: Database, g: dict) -> str:
    note = training_note(settings, db, g)
    return (f"Model: `{g['model']}` · backend: {g['backend']} · adapter: `{g['adapter'] or 'none'}`"
            + (f" · {note}" if note else ""))


@dataclass
class _Chat:
    """The chat's components, which the other parts read and update."""
    question: Any
    chatbot: Any
    new: Any
    sources: Any
    status: Any
    footer: Any
    conversation: Any
    message_ids: Any  # per chatbot message: the recorded answer's id (None for questions)
    documents: Any    # this session's analysed uploads: follow-ups are answered against them


def build_app(engine: ChatEngine, db: Database, documents: DocumentService | None = None):
    """The domain's chat UI; ``db`` holds the training jobs its footer reports and the review
    queue, ``documents`` analyses uploads (None: no upload panel)."""
    import gradio as gr

    s = engine.settings
    # Room for every turn the model may hold or queue, plus turns that need no model
    # (rules, refusals, tool figures), which so never wait behind a generation.
    turns = dict(concurrency_limit=engine.gen.admission.capacity + s.ui.extra_concurrency, concurrency_id="turns")
    with gr.Blocks(title=s.domain.title) as app:
        gr.Markdown(f"# {s.domain.title}\n{s.domain.description}")
        if s.domain.disclaimer:
            gr.Markdown(f"> **{s.domain.disclaimer}**", elem_id="disclaimer")
        chat = _chat_part(engine, db, turns)
        if documents is not None:
            _analysis_panel(documents, chat.documents, chat.status)
        _feedback_part(engine, chat)
        _correction_part(engine, chat)
        chat.new.click(lambda: (None, [], [], "<div id='sources-empty'>New conversation.</div>", ""),
                       None, [chat.conversation, chat.chatbot, chat.message_ids, chat.sources, chat.status],
                       api_name=False)
        app.load(lambda: _footer(s, db, engine.gen.describe()), None, chat.footer, api_name=False)
        _api(engine, turns)
    add_review_page(app, s, db)
    # Every other event (feedback, corrections, the review page) is quick: this many at once each.
    app.queue(default_concurrency_limit=s.ui.extra_concurrency)
    return app


def _chat_part(engine: ChatEngine, db: Database, turns: dict) -> _Chat:
    """The conversation, its question box and buttons, the sources beside it, and the
    status and footer lines under it; a question streams its answer in."""
    import gradio as gr

    s = engine.settings
    conversation, message_ids, documents = gr.State(None), gr.State([]), gr.State([])
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label=s.domain.title, height=460, elem_id="chat", feedback_options=("Like", "Dislike"))
            question = gr.Textbox(placeholder="Ask a question…", show_label=False, elem_id="question", lines=2)
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                new = gr.Button("New conversation", elem_id="new-conversation")
            if s.chat.examples:
                gr.Examples(examples=[[q] for q in s.chat.examples], inputs=[question], label="Example questions")
        sources = _sources_part(engine)
    status = gr.Markdown("", elem_id="status")
    # Names the model and adapter that answered last; follows promotions without a restart.
    footer = gr.Markdown(_footer(s, db, engine.gen.describe()), elem_id="footer")
    chat = _Chat(question, chatbot, new, sources, status, footer, conversation, message_ids, documents)
    respond = _responder(engine, db)
    outputs = [question, chatbot, conversation, message_ids, sources, status, footer]
    inputs = [question, chatbot, conversation, message_ids, documents]
    question.submit(respond, inputs, outputs, api_name="chat", **turns)
    send.click(respond, inputs, outputs, api_name=False, **turns)
    return chat


def _sources_part(engine: ChatEngine):
    """The sources panel; a fine-tuned-only assistant retrieves nothing: no empty panel
    claiming otherwise."""
    import gradio as gr

    with gr.Column(scale=2, visible=engine.uses_retrieval):
        gr.Markdown("### Sources")
        return gr.HTML("<div id='sources-empty'>Sources of the latest answer appear here.</div>", elem_id="sources")


def _responder(engine: ChatEngine, db: Database):
    """The chat handler: streams one turn into the conversation, its sources and notes."""
    import gradio as gr

    s = engine.settings

    def respond(text: str, history: list, conv: str | None, ids: list, docs: list, request: gr.Request):
        history, ids = list(history or []), list(ids or [])
        if not (text or "").strip():
            yield text, history, conv, ids, gr.skip(), "Type a question first.", gr.skip()
            return
        history += [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        ids += [None, None]
        # Gradio closes this generator when the user presses stop or leaves; closing the turn
        # with it frees its generation slot and closes the model server's request.
        events = engine.stream(text, principal=principal_of(request), conversation_id=conv, documents=docs or ())
        # The first piece goes out at once (an escalation is read first); later ones at most
        # every ui.stream_interval_s, since each update re-sends the answer so far and many
        # users' per-token updates would take the server's CPU from everyone's turns.
        sent = 0.0
        try:
            with closing(events):
                for event in events:
                    if event.kind == "sources":
                        yield "", history, conv, ids, sources_panel(event.passages or []), "", gr.skip()
                    elif event.kind == "token":
                        history[-1] = {"role": "assistant", "content": history[-1]["content"] + event.text}
                        if time.monotonic() - sent >= s.ui.stream_interval_s:
                            sent = time.monotonic()
                            yield "", history, conv, ids, gr.skip(), "", gr.skip()
                    else:
                        turn = event.turn
                        history[-1] = {"role": "assistant", "content": turn.shown()}
                        ids[-1] = turn.message_id
                        shown = [p for p in turn.passages if p.in_prompt]
                        notes = "\n\n".join(f"**Warning:** {w}" for w in turn.warnings)
                        yield ("", history, turn.conversation_id, ids, sources_panel(shown), notes,
                               _footer(s, db, turn.generator))
        except USER_ERRORS as e:
            yield _failed(text, history, conv, ids, str(e))
        except Exception:
            log.exception("chat turn failed")
            yield _failed(text, history, conv, ids, "something went wrong; see the server log.")

    return respond


def _failed(text: str, history: list, conv: str | None, ids: list, reason: str) -> tuple:
    """The error where the answer would have been, and the question back in the box, so
    nothing typed is lost and a retry is one click."""
    import gradio as gr

    history[-1] = {"role": "assistant", "content": f"**Error:** {reason}"}
    return text, history, conv, ids, gr.skip(), f"**Error:** {reason}", gr.skip()


def _feedback_part(engine: ChatEngine, chat: _Chat) -> None:
    """Like or dislike an answer in the conversation."""
    import gradio as gr

    def on_like(ids: list, data: gr.LikeData, request: gr.Request):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        mid = ids[index] if 0 <= index < len(ids) else None
        if mid is None:
            return "Feedback applies to answers only."
        if data.liked not in (True, False):
            return ""
        try:
            engine.recorder.feedback(principal_of(request), mid, 1 if data.liked else -1)
        except USER_ERRORS as e:
            return f"**Error:** {e}"
        return "Thanks: feedback recorded."

    chat.chatbot.like(on_like, [chat.message_ids], [chat.status])


def _correction_part(engine: ChatEngine, chat: _Chat) -> None:
    """Propose what the last answer should have said, as a training example a reviewer decides on."""
    import gradio as gr

    with gr.Accordion("Correct the last answer", open=False):
        correction = gr.Textbox(placeholder="What the answer should have said…", show_label=False,
                                elem_id="correction", lines=3)
        submit = gr.Button("Submit correction", elem_id="submit-correction")

    def on_correct(text: str, ids: list, request: gr.Request):
        mid = next((m for m in reversed(ids or []) if m), None)
        if mid is None:
            return text, "Ask a question first: a correction applies to the last answer."
        try:
            engine.recorder.correct(principal_of(request), mid, text)
        except USER_ERRORS as e:
            return text, f"**Error:** {e}"
        return "", "Thanks: your correction was sent for review."

    submit.click(on_correct, [correction, chat.message_ids], [correction, chat.status], api_name=False)


def _api(engine: ChatEngine, turns: dict) -> None:
    """The JSON endpoints scripts call: a whole turn, feedback and corrections."""
    import gradio as gr

    def ask(question: str, conversation_id: str | None = None, document_ids: list[str] | None = None,
            request: gr.Request = None) -> dict:
        """One whole turn as JSON (scripted conversations drive deployments through this);
        ``document_ids`` puts the caller's uploads under discussion first."""
        turn = engine.ask(question, principal=principal_of(request), conversation_id=conversation_id or None,
                          documents=document_ids or ())
        return turn.to_dict()

    def feedback(message_id: str, rating: int, request: gr.Request = None) -> str:
        """Rate an answer: 1 (like) or -1 (dislike)."""
        engine.recorder.feedback(principal_of(request), message_id, int(rating))
        return "recorded"

    def correct(message_id: str, answer: str, request: gr.Request = None) -> str:
        """Propose a corrected answer to one of your answers, for review before any training."""
        engine.recorder.correct(principal_of(request), message_id, answer)
        return "proposed"

    gr.api(ask, api_name="ask", **turns)
    gr.api(feedback, api_name="feedback")
    gr.api(correct, api_name="correct")


def _analysis_panel(service: DocumentService, documents, status) -> None:
    """Upload a document, get the clause report (shown and downloadable as Markdown and
    PDF); the document joins this session's ``documents`` for follow-up questions."""
    import gradio as gr

    a = service.settings.analysis
    kind = service.checklist.document_kind
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown(f"### Analyse a {kind}\nUpload a {kind} ({', '.join(t.lstrip('.').upper() for t in a.upload_types)},"
                        f" up to {a.max_upload_mb:g} MB). It stays private to you.")
            upload = gr.File(label=f"Upload a {kind}", file_types=list(a.upload_types), elem_id="upload")
            analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
            downloads = gr.File(label="Download the report", file_count="multiple", interactive=False,
                                elem_id="report-files")
        with gr.Column(scale=2):
            report = gr.Markdown(f"*The clause report of an uploaded {kind} appears here.*", elem_id="clause-report")
    # API clients (gradio_client) see no State: they get the analysed documents' ids here,
    # to pass as /ask's document_ids.
    analysed = gr.JSON(visible=False)

    def run(path: str | None, docs: list, request: gr.Request, progress=gr.Progress()):
        if not path:
            return gr.skip(), gr.skip(), docs, docs, f"**Error:** choose a {kind} file to upload first."
        try:
            analysis = service.analyse_upload(Path(path), principal_of(request),
                                              progress=lambda f, label: progress(f, desc=label))
        except USER_ERRORS as e:
            return gr.skip(), gr.skip(), docs, docs, f"**Error:** {e}"
        except Exception:
            log.exception("document analysis failed")
            return gr.skip(), gr.skip(), docs, docs, "**Error:** the analysis failed; see the server log. Nothing was kept."
        files = service.write_files(analysis, Path(tempfile.mkdtemp(prefix="clause-report-")))
        docs = [d for d in docs or [] if d != analysis.doc_id] + [analysis.doc_id]
        note = f"Analysed **{analysis.report.title}**. Follow-up questions are answered against it and the corpus."
        return analysis.markdown, [str(f) for f in files], docs, docs, note

    analyse.click(run, [upload, documents], [report, downloads, documents, analysed, status], api_name="analyse")

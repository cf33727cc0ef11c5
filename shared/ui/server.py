"""Serving: each assistant is a FastAPI app (the Gradio UI at ``/``, span pages at
``/sources/<node id>``, ``/healthz`` for liveness, ``/readyz`` for readiness, the OpenAI
chat API at ``/v1``) on its own port."""
from __future__ import annotations

import threading
from typing import Callable, Sequence

from fastapi import Request  # at module level: FastAPI resolves the route's annotations here
from starlette.routing import Mount

from ..analysis.service import DocumentService
from ..api_keys import ApiKeys
from ..auth import Users
from ..chat import ChatEngine
from ..db import Database, DatabaseUnavailable
from .openai_api import add_openai_api
from .render import span_page
from .sessions import SessionStore


def create_server(engine: ChatEngine, *, db: Database, nodes: Callable[[list[str]], list],
                  documents: DocumentService | None = None):
    """The domain's app around ``engine``, given the parts its other pages use: ``db`` (logins,
    sessions, API keys, review queue, readiness), ``nodes`` (the store's passages by node id,
    for the span pages) and ``documents`` (the upload analysis; None for a domain without one)."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, JSONResponse

    from .chat_app import build_app

    settings = engine.settings
    api = FastAPI(title=settings.domain.title)

    @api.get("/healthz")
    def healthz() -> dict:
        """Liveness: the process answers (a load balancer restarts it otherwise)."""
        return {"domain": settings.domain.name, **engine.gen.describe()}

    @api.get("/readyz")
    def readyz():
        """Readiness: send traffic only when the database answers and the model is loaded."""
        report = readiness(engine, db)
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    @api.get("/sources/{node_id:path}", response_class=HTMLResponse)
    def source(node_id: str) -> str:
        # The system context: public passages only (private ones stay behind RLS).
        found = nodes([node_id])
        if not found:
            raise HTTPException(404, "no such public passage")
        n = found[0]
        return span_page(str(n.metadata.get("title") or node_id), str(n.metadata.get("doc_id") or n.ref_doc_id),
                         n.get_content(), n.metadata)

    add_openai_api(api, engine, ApiKeys(db))
    s = settings.ui
    # The login name becomes the principal of every query the session makes (RLS).
    auth = Users(db).verify if s.login else None
    sessions = SessionStore(db, settings.domain.name, s) if s.login else None
    if sessions is not None:
        _sign_out_route(api, cookie_id(settings.domain.name), sessions)
    # Gradio refuses far larger files before storing them; up to twice the limit they reach
    # the upload check, whose message names the limit.
    cap = int(settings.analysis.max_upload_mb * 2e6)
    # ssr_mode off: Gradio cannot render a multi-page app (the chat and /review) server-side
    # when mounted on FastAPI, and would say so at every start.
    api = gr.mount_gradio_app(api, build_app(engine, db, documents), path="/", auth=auth, server_name=s.host, server_port=s.port,
                              max_file_size=cap, auth_message=f"Sign in to the {settings.domain.title}.", ssr_mode=False)
    if sessions is not None:
        gradio_app = next(r.app for r in api.routes if isinstance(r, Mount))
        gradio_app.tokens = sessions
        # Gradio names its cookie with a random id per process; one name per domain lets
        # every replica of the domain read the same sign-in.
        gradio_app.cookie_id = cookie_id(settings.domain.name)
    return api


def cookie_id(domain: str) -> str:
    return "assistants-" + domain


def _sign_out_route(api, name: str, sessions: SessionStore) -> None:
    """Sign-out ends the session in the database (Gradio's own route would only forget it
    in this process). Registered before the Gradio mount, so it takes precedence."""
    from fastapi.responses import RedirectResponse

    @api.get("/logout")
    def logout(request: Request):
        token = request.cookies.get(f"access-token-{name}") or request.cookies.get(f"access-token-unsecure-{name}")
        if token:
            del sessions[token]
        response = RedirectResponse(url="/", status_code=302)
        for cookie in (f"access-token-{name}", f"access-token-unsecure-{name}"):
            response.delete_cookie(cookie, path="/")
        return response


def readiness(engine: ChatEngine, db: Database) -> dict:
    """Database reachable (through the application pool, as requests use it), model loaded,
    which adapter version answers, and what trains meanwhile."""
    from .chat_app import training_note

    report: dict = {"domain": engine.settings.domain.name, "ready": True}
    try:
        with db.session() as conn:
            conn.execute("SELECT 1")
        report["database"] = "ok"
    except DatabaseUnavailable as e:
        report.update(ready=False, database=str(e))
    try:
        report.update(engine.gen.describe(), model_loaded=True)
    except Exception as e:  # noqa: BLE001 - any load failure means not ready, and says why
        report.update(ready=False, model_loaded=False, model_error=f"{type(e).__name__}: {e}")
    else:
        # Ready on the base model while its adapter trains: the answer says so.
        report["training"] = training_note(engine.settings, db, report) if report["database"] == "ok" else None
    return report


def serve(apps: Sequence[tuple[object, str, int]]) -> None:
    """Run each (app, host, port) with uvicorn, all in this process, until interrupted."""
    import uvicorn

    # A bounded graceful shutdown: streaming clients (SSE) would otherwise hold it open.
    servers = [uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5))
               for app, host, port in apps]
    threads = [threading.Thread(target=srv.run, daemon=True) for srv in servers[1:]]
    for t in threads:
        t.start()
    try:
        servers[0].run()
    finally:
        for srv in servers[1:]:
            srv.should_exit = True
        for t in threads:
            t.join(timeout=10)

"""Serving: each assistant is a FastAPI app (the Gradio UI at ``/``, span pages at
``/sources/<node id>``, ``/healthz``) on its own port."""
from __future__ import annotations

import threading
from typing import Sequence

from ..auth import Users
from ..chat import ChatEngine
from .render import span_page


def create_server(engine: ChatEngine):
    import gradio as gr
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse

    from .chat_app import build_app

    api = FastAPI(title=engine.settings.domain.title)

    @api.get("/healthz")
    def healthz() -> dict:
        return {"domain": engine.settings.domain.name, **engine.gen.describe()}

    @api.get("/sources/{node_id:path}", response_class=HTMLResponse)
    def source(node_id: str) -> str:
        # The system context: public passages only (private ones stay behind RLS).
        nodes = engine.runtime.store.get_nodes(node_ids=[node_id])
        if not nodes:
            raise HTTPException(404, "no such public passage")
        n = nodes[0]
        return span_page(str(n.metadata.get("title") or node_id), str(n.metadata.get("doc_id") or n.ref_doc_id),
                         n.get_content(), n.metadata)

    s = engine.settings.ui
    # The login name becomes the principal of every query the session makes (RLS).
    auth = Users(engine.runtime.db).verify if s.login else None
    # Gradio refuses far larger files before storing them; up to twice the limit they reach
    # the upload check, whose message names the limit.
    cap = int(engine.settings.analysis.max_upload_mb * 2e6)
    return gr.mount_gradio_app(api, build_app(engine), path="/", auth=auth, server_name=s.host, server_port=s.port,
                               max_file_size=cap, auth_message=f"Sign in to the {engine.settings.domain.title}.")


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

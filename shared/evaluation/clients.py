"""Who the scripted conversations talk to: the domain's chat engine in this process, or a
running deployment through ``gradio_client`` (the served app's ``/ask`` and ``/analyse``
endpoints, exactly what the UI calls). Both return the turn as the JSON ``/ask`` gives."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol


class ChatClient(Protocol):
    def ask(self, question: str, conversation_id: str | None, documents: list[str]) -> tuple[dict, float]:
        """(the turn as a dict, wall milliseconds)."""

    def upload(self, path: Path) -> str:
        """Upload a document privately for this client's principal; returns its doc id."""


class LocalClient:
    """In-process: one principal, the domain's ``ChatEngine``."""

    def __init__(self, runtime, principal: str):
        self.runtime, self.principal = runtime, principal
        self.engine = runtime.chat_engine()

    def ask(self, question, conversation_id, documents):
        t0 = time.perf_counter()
        turn = self.engine.ask(question, principal=self.principal, conversation_id=conversation_id,
                               documents=documents)
        return turn.to_dict(), (time.perf_counter() - t0) * 1000

    def upload(self, path: Path) -> str:
        from ..analysis import Checklist
        from ..analysis.upload import accept_upload, ingest_upload

        settings = self.runtime.settings
        doc = accept_upload(settings, Checklist.for_settings(settings), path)
        return ingest_upload(self.runtime, self.principal, path, doc)


class RemoteClient:
    """A served assistant at ``url``. Each client is its own Gradio session, hence its own
    anonymous principal (or the login, with ``auth=(user, password)``)."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None):
        try:
            from gradio_client import Client
        except ImportError as e:  # pragma: no cover - gradio_client comes with gradio
            raise RuntimeError("gradio_client is required for --url: pip install gradio_client") from e
        self.client = Client(url, auth=auth, verbose=False)

    def ask(self, question, conversation_id, documents):
        t0 = time.perf_counter()
        turn = self.client.predict(question, conversation_id, documents, api_name="/ask")
        return turn, (time.perf_counter() - t0) * 1000

    def upload(self, path: Path) -> str:
        from gradio_client import handle_file

        # The UI's own path: upload, ingest privately, analyse; the session's documents come back.
        _, _, documents, note = self.client.predict(handle_file(str(path)), api_name="/analyse")
        if not documents:
            raise RuntimeError(f"the upload of {Path(path).name} was refused: {note}")
        return documents[-1]

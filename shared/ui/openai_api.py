"""The OpenAI chat API on each assistant's port (``/v1``): ``GET /v1/models``,
``POST /v1/chat/completions`` (streamed as server-sent events or not) and
``POST /v1/feedback``, so the OpenAI SDKs, Open WebUI, LibreChat or curl reach the
assistant. Every answer is the assistant's own turn (``ChatEngine``: rules, tools,
retrieval scoped to the key's principal, number checks, disclaimer), recorded with
``channel = 'api'``; it is never a raw model call."""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Iterator, Literal
from urllib.parse import quote

from fastapi import Request  # at module level: FastAPI resolves the route's annotations here
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..api_keys import ApiKeys
from ..chat import ChatEngine, UnknownConversation
from ..types import ChatEvent, Turn
from ..db import DatabaseUnavailable
from ..generation import ContextOverflow, GenerationError, GeneratorBusy

log = logging.getLogger(__name__)
ANONYMOUS = "anon-api"  # the one principal of keyless callers where `api.anonymous` allows them
CONVERSATION_HEADER = "X-Conversation-Id"


class ApiError(Exception):
    """An HTTP error in OpenAI's shape: ``{"error": {"message", "type", "code", "param"}}``."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def body(self) -> dict:
        kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
            self.status, "invalid_request_error" if self.status < 500 else "server_error")
        return {"error": {"message": self.message, "type": kind, "code": self.code, "param": None}}


# -- the request, validated strictly (a number where text belongs is a 400, not coerced) -----
class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: str
    text: str = ""


class InMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text ones count, images do not
            return "\n".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class CompletionRequest(BaseModel):
    # Sampling knobs clients send (temperature, max_tokens, ...) are ignored: the domain's settings decide.
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str
    messages: list[InMessage] = Field(min_length=1)
    stream: bool = False
    metadata: dict[str, str] | None = None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    message_id: str
    kind: Literal["like", "dislike", "correct"]
    answer: str | None = Field(None, description="with `correct`: the answer it should have been")


def add_openai_api(api, engine: ChatEngine, keys: ApiKeys) -> None:
    """Registers /v1 on the FastAPI app ``api`` (before the Gradio mount, which owns ``/``);
    ``keys`` are the API keys clients authenticate with."""
    from fastapi.responses import JSONResponse

    settings = engine.settings
    domain = settings.domain.name

    @api.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        retry = {"Retry-After": str(settings.api.retry_after_s)} if e.status == 429 else {}
        return JSONResponse(e.body(), status_code=e.status, headers=retry)

    @api.get("/v1/models")
    async def models(request: Request) -> dict:
        await _principal(request, keys, settings)
        return {"object": "list", "data": [_model_card(engine)]}

    @api.post("/v1/chat/completions")
    async def completions(request: Request):
        principal = await _principal(request, keys, settings)
        req = _parse(await _body(request, settings.api.max_body_kb), CompletionRequest)
        if req.model != domain:
            raise ApiError(404, f"the model {req.model!r} does not exist here; this port serves {domain!r}"
                                " (GET /v1/models)", "model_not_found")
        question, history = _question(req.messages)
        await _in_thread(lambda: engine.checked_question(question))  # a bad question starts no conversation
        conversation = request.headers.get(CONVERSATION_HEADER) or (req.metadata or {}).get("conversation_id")
        # A continued conversation's history is its record; a new one's is what the client sent.
        turn = dict(principal=principal, channel="api", conversation_id=conversation, history=None)
        if not conversation:
            turn.update(conversation_id=await _in_thread(lambda: engine.recorder.start(principal)), history=history)
        headers = {CONVERSATION_HEADER: turn["conversation_id"]}
        if req.stream:
            return await _streamed(request, engine, question, turn, headers)
        done = await _in_thread(lambda: engine.ask(question, **turn))
        return JSONResponse(_completion(engine, done, str(request.base_url)), headers=headers)

    @api.post("/v1/feedback")
    async def feedback(request: Request) -> dict:
        """Like, dislike or correct one of the caller's answers (its ``message_id``): the same
        review queue as the UI's buttons."""
        principal = await _principal(request, keys, settings)
        req = _parse(await _body(request, settings.api.max_body_kb), FeedbackRequest)
        if req.kind == "correct":
            await _in_thread(lambda: engine.recorder.correct(principal, req.message_id, req.answer or ""))
            return {"object": "feedback", "message_id": req.message_id, "status": "proposed for review"}
        rating = 1 if req.kind == "like" else -1
        await _in_thread(lambda: engine.recorder.feedback(principal, req.message_id, rating))
        return {"object": "feedback", "message_id": req.message_id, "status": "recorded"}


def _model_card(engine: ChatEngine) -> dict:
    g = engine.gen.describe()
    return {"id": engine.settings.domain.name, "object": "model", "created": 0, "owned_by": "assistants",
            "title": engine.settings.domain.title, "backend": g["backend"], "base_model": g["model"],
            "adapter": g["adapter"]}


async def _principal(request: Request, keys: ApiKeys, settings) -> str:
    """The key's principal, whom row-level security binds, as a signed-in UI user."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if not key:
        if settings.api.anonymous:
            return ANONYMOUS
        raise ApiError(401, "an API key is required: send `Authorization: Bearer <key>` "
                            "(an administrator creates one with `assistants keys create`)", "missing_api_key")
    principal = await _in_thread(lambda: keys.principal_of(key, settings.domain.name))
    if principal is None:
        raise ApiError(401, "the API key is wrong, revoked, expired or not valid for this assistant", "invalid_api_key")
    return principal


async def _body(request: Request, limit_kb: int) -> bytes:
    """The body, refused (413) as soon as it passes the limit, declared or not."""
    limit = limit_kb * 1024
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit():
        raise ApiError(400, "the Content-Length header is not a number", "invalid_request")
    if int(declared) > limit:
        raise ApiError(413, f"the request body is larger than the {limit_kb} KB limit", "body_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ApiError(413, f"the request body is larger than the {limit_kb} KB limit", "body_too_large")
    return bytes(body)


def _parse(body: bytes, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as e:
        if any(err["type"] == "json_invalid" for err in e.errors()):
            raise ApiError(400, "the request body is not valid JSON", "invalid_json") from None
        # Which field and why, never the values sent (they may be long or personal).
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']}" for err in e.errors()[:5])
        raise ApiError(400, f"invalid request: {problems}", "invalid_request") from None


def _question(messages: list[InMessage]) -> tuple[str, list[dict]]:
    """The last message is the question; earlier user and assistant messages are the history.
    A client's ``system`` or ``developer`` message is left out: the domain's system prompt and
    safety rules always apply, and a client cannot replace or weaken them."""
    if messages[-1].role != "user":
        raise ApiError(400, "the last message must be the user's question", "invalid_request")
    history = [{"role": m.role, "content": m.text()} for m in messages[:-1] if m.role in ("user", "assistant")]
    return messages[-1].text(), history


async def _in_thread(work):
    """Blocking work (the database, the model) off the event loop, its errors as HTTP errors."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(work)
    except Exception as e:  # noqa: BLE001 - every failure becomes one of the documented statuses
        raise _as_api_error(e) from None


def _as_api_error(e: Exception) -> ApiError:
    """A failure as the status the client can act on; the message never carries internals
    (hosts, paths, SQL): those go to the server log."""
    if isinstance(e, ApiError):
        return e
    if isinstance(e, GeneratorBusy):
        return ApiError(429, str(e), "busy")  # with Retry-After (the exception handler)
    if isinstance(e, UnknownConversation):
        return ApiError(404, "no such conversation or message for this key", "not_found")
    if isinstance(e, ContextOverflow):
        return ApiError(400, "the question and its context do not fit the model's context window; shorten it",
                        "context_length_exceeded")
    if isinstance(e, ValueError):  # the engine's own checks: empty or over-long question, empty correction
        return ApiError(400, str(e), "invalid_request")
    if isinstance(e, DatabaseUnavailable):
        log.warning("api: database unavailable: %s", e)
        return ApiError(503, "the database is unavailable; try again later", "database_unavailable")
    if isinstance(e, GenerationError):
        log.warning("api: generation failed: %s", e)
        return ApiError(503, "the model server is unavailable; try again later", "model_unavailable")
    log.exception("api: request failed", exc_info=e)
    return ApiError(500, "internal error; see the server log", "internal_error")


def _citations(turn: Turn, base_url: str) -> list[dict]:
    return [{"n": c.n, "title": c.title, "doc_id": c.doc_id,
             "char_start": c.span[0] if c.span else None, "char_end": c.span[1] if c.span else None,
             "as_of": c.as_of, "url": base_url.rstrip("/") + "/sources/" + quote(c.node_id, safe="")}
            for c in turn.citations]


def _usage(engine: ChatEngine, turn: Turn) -> dict:
    # A rule, refusal or tool answer asked no model: no prompt tokens; its text still counts.
    prompt = int(turn.usage.get("prompt_tokens", 0))
    completion = int(turn.usage.get("completion_tokens") or engine.gen.count_tokens(turn.answer))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _extra(turn: Turn, base_url: str) -> dict:
    """What an OpenAI response lacks: the conversation to continue, the answer's id for
    feedback, the structured citations, warnings and who answered."""
    return {"conversation_id": turn.conversation_id, "message_id": turn.message_id,
            "citations": _citations(turn, base_url), "warnings": turn.warnings, "grounded": turn.grounded,
            "adapter": turn.generator.get("adapter")}


def _completion(engine: ChatEngine, turn: Turn, base_url: str) -> dict:
    extra = _extra(turn, base_url)
    message = {"role": "assistant", "content": turn.shown(), **extra}
    return {"id": f"chatcmpl-{turn.message_id}", "object": "chat.completion", "created": int(time.time()),
            "model": engine.settings.domain.name, "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": _usage(engine, turn), **extra}


def _next_shown(events: Iterator[ChatEvent]) -> ChatEvent | None:
    """The next event a client sees (a token or the finished turn); None at the end."""
    return next((e for e in events if e.kind != "sources"), None)


async def _streamed(request: Request, engine: ChatEngine, question: str, turn_args: dict, headers: dict):
    """Server-sent events. The turn runs until its first visible event before the response
    starts, so a bad question, a busy model or an outage is a status code, not a broken
    stream; an escalation's preface is that first event and goes out at once."""
    import anyio
    from fastapi.responses import StreamingResponse
    from starlette.concurrency import run_in_threadpool

    events = engine.stream(question, **turn_args)
    first = await _in_thread(lambda: _next_shown(events))
    created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4()}"
    model, base_url = engine.settings.domain.name, str(request.base_url)

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def sse():
        sent, event = "", first
        try:
            yield chunk({"role": "assistant", "content": ""})
            while event is not None:
                if event.kind == "token":
                    sent += event.text
                    yield chunk({"content": event.text})
                    if await request.is_disconnected():
                        return  # finally closes the turn: its generation slot and model request end
                else:
                    yield chunk({"content": _rest(sent, event.turn.shown())}, "stop",
                                usage=_usage(engine, event.turn), **_extra(event.turn, base_url))
                event = await run_in_threadpool(_next_shown, events)
        except Exception as e:  # noqa: BLE001 - the status line is sent: the error goes in the stream
            yield f"data: {json.dumps(_as_api_error(e).body())}\n\n"
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(events.close)
        yield "data: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})


def _rest(sent: str, final: str) -> str:
    """What the client still needs once the turn is checked. Checks after generation may
    change the streamed text (a citation marker added, an unsupported figure replaced by the
    source's sentence): then the checked answer follows, marked, as the one that counts."""
    if final.startswith(sent):
        return final[len(sent):]
    return "\n\n---\n**Checked against the sources:**\n\n" + final

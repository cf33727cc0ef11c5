"""``engine``: the managed local llama.cpp engine (``engine.EngineManager``), the default
for serving on a CPU. Many turns decode at once in one process shared by the domains; the
prompt is rendered here with the GGUF's own template, exactly as the in-process
``llamacpp`` backend renders it, and the domain's LoRA is applied per request."""
from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Iterator, Sequence

from .base import Admission, GenerationError, Generator, Message, SamplingParams
from .engine import EngineManager, EngineSpec, Running
from .models import local_gguf, model_id
from .templates import end_of_turn, gguf_vocabulary

INSTALL_HINT = "pip install xllamacpp"
ENGINE_DIED = "the model engine stopped during this answer; it is started again for the next turn: ask again"

# One admission per engine in a process: the domains share its slots, so the bound holds
# for the engine, not per domain.
_ADMISSIONS: dict[str, Admission] = {}
_ADMISSIONS_LOCK = threading.Lock()


def is_available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and importlib.util.find_spec("llama_cpp") is not None


def engine_threads() -> int:
    """One core fewer than the machine has: llama.cpp's threads wait for each other at every
    step, so one of them sharing a core with the app or a training job stalls them all
    (benchmarks/threads.py: no answer within a minute on 2 of 2 cores beside a niced job)."""
    return max(1, (os.cpu_count() or 1) - 1)


class EngineGenerator(Generator):
    name = "engine"
    concurrent = True

    def __init__(self, settings, state_dir: Path):
        super().__init__(settings)
        path = self._path = local_gguf(settings, "the engine")
        self.adapter = str(Path(settings.adapter).resolve()) if settings.adapter else None
        self.spec = EngineSpec(str(path), (self.adapter,) if self.adapter else (), settings.max_concurrency,
                               settings.context_window, settings.threads or engine_threads(), settings.wait_policy,
                               settings.nice)
        self.manager = EngineManager(state_dir)
        with _ADMISSIONS_LOCK:
            self.admission = _ADMISSIONS.setdefault(str(self.manager.dir), self.admission)
        self.tokenizer = gguf_vocabulary(str(path))
        self.end_of_turn = end_of_turn(self.tokenizer.render)
        self.engine()  # start it (or find it) now: a broken engine fails at start-up, not at the first turn
        import httpx

        self.client = httpx.Client(timeout=settings.request_timeout_s,
                                   limits=httpx.Limits(max_connections=settings.max_concurrency))

    def engine(self, check_health: bool = False) -> Running:
        return self.manager.ensure(self.spec, check_health)

    @property
    def model_id(self) -> str:
        return model_id(self._path)

    @property
    def adapter_id(self) -> str | None:
        return model_id(Path(self.adapter)) if self.adapter else None

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def _body(self, running: Running, messages: Sequence[Message], **kw) -> dict:
        index = running.lora_index(self.adapter)
        return {"prompt": self.render(messages), "cache_prompt": self.settings.prefix_cache,
                "lora": [] if index is None else [{"id": index, "scale": 1.0}], **kw}

    def _post(self, path: str, body_for, stream: bool):
        """Send to the engine, starting it again first when it no longer answers; the
        response context manager."""
        import httpx

        def send(running: Running):
            request = self.client.build_request("POST", f"{running.url}{path}", json=body_for(running))
            return self.client.send(request, stream=stream)

        try:
            return send(self.engine())
        except httpx.TimeoutException:
            raise
        except httpx.TransportError:
            # Died since the last turn: refused, or a kept-alive connection reset. Nothing of
            # this turn was generated yet, so it waits for a new engine and is sent again.
            return send(self.engine(check_health=True))

    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        import httpx

        stops = list(params.stop) + ([self.end_of_turn] if self.end_of_turn else [])
        body_for = lambda running: self._body(  # noqa: E731
            running, messages, stream=True, n_predict=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, repeat_penalty=params.repeat_penalty, seed=params.seed, stop=stops)
        try:
            resp = self._post("/completion", body_for, stream=True)
            try:
                if resp.status_code != 200:
                    raise GenerationError(f"the model engine answered {resp.status_code}: {resp.read().decode()[:300]}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])  # a line cut off by a dying engine fails here
                    if event.get("content"):
                        yield event["content"]
                    if event.get("stop"):
                        return
                # The stream ended without the engine's last event: it died mid-answer.
                raise GenerationError(ENGINE_DIED)
            finally:  # closing it (a stop, a dropped client) tells the engine to stop this sequence
                resp.close()
        except httpx.TimeoutException as e:
            raise GenerationError(f"the model engine did not answer within {self.settings.request_timeout_s:g} s; "
                                  "try again") from e
        except (httpx.HTTPError, json.JSONDecodeError) as e:
            raise GenerationError(f"{ENGINE_DIED} ({type(e).__name__})") from e

    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        import httpx

        body_for = lambda running: self._body(running, messages, n_predict=1, n_probs=50, temperature=0.0)  # noqa: E731
        try:
            resp = self._post("/completion", body_for, stream=False)
        except httpx.HTTPError as e:
            raise GenerationError(f"the model engine did not answer: {type(e).__name__}") from e
        if resp.status_code != 200:
            raise GenerationError(f"the model engine answered {resp.status_code}: {resp.text[:300]}")
        top = {t["id"]: t["logprob"] for t in resp.json()["completion_probabilities"][0]["top_logprobs"]}
        # A choice outside the top 50 is at most as likely as the least likely listed one.
        floor = min(top.values())
        ids = [self.tokenizer.llm.tokenize(c.encode("utf-8"), add_bos=False, special=False)[0] for c in choices]
        return [float(top.get(i, floor)) for i in ids]

    def describe(self) -> dict[str, str | None]:
        running = self.engine()  # /readyz and each turn's record find (and replace) a dead engine
        return {**super().describe(),
                "engine": f"llama.cpp engine pid {running.pid} at {running.url}, {running.spec.slots} slots"}

    def close(self) -> None:
        self.client.close()

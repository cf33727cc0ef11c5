"""``openai``: any OpenAI-compatible endpoint (vLLM with multi-LoRA, llama.cpp server,
TGI), for deployments that outgrow one machine. The server applies the chat template;
a local tokenizer (``generation.tokenizer``) makes context budgets exact."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Iterator, Sequence

from .base import GenerationError, Generator, Message, SamplingParams
from .models import bundled_gguf
from .templates import CHATML, HFChat, gguf_vocabulary, render_template

INSTALL_HINT = "pip install httpx"


def is_available() -> bool:
    return importlib.util.find_spec("httpx") is not None


class _Estimate:
    """No local tokenizer: ~3 characters a token, which over-counts English (safe side)."""

    def render(self, messages: Sequence[Message]) -> str:
        return render_template(CHATML, messages)

    def count(self, text: str) -> int:
        return len(text) // 3 + 1


def _local_tokenizer(settings):
    source = settings.tokenizer or (None if settings.model else str(bundled_gguf()))
    if source is None:
        return _Estimate()
    if source.endswith(".gguf"):
        return gguf_vocabulary(source)
    from transformers import AutoTokenizer

    return HFChat(AutoTokenizer.from_pretrained(source))


class OpenAIGenerator(Generator):
    name = "openai"
    concurrent = True  # the server batches; one pooled client, at most max_concurrency requests in flight

    def __init__(self, settings, state_dir: Path):
        super().__init__(settings)
        import httpx

        if not settings.base_url:
            raise GenerationError("the openai backend needs generation.base_url (e.g. http://localhost:8000/v1)")
        key = os.environ.get(settings.api_key_env, "")
        self.client = httpx.Client(
            base_url=settings.base_url.rstrip("/"), timeout=settings.request_timeout_s,
            limits=httpx.Limits(max_connections=settings.max_concurrency,
                                max_keepalive_connections=settings.max_concurrency),
            headers={"Authorization": f"Bearer {key}"} if key else {})
        self.tokenizer = _local_tokenizer(settings)

    @property
    def model_id(self) -> str:
        return self.settings.model or "default"

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        import httpx

        body = {
            # vLLM serves each LoRA under its own model name: the adapter is the model to ask for.
            "model": self.settings.adapter or self.model_id, "messages": list(messages), "stream": True,
            "max_tokens": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p,
            "seed": params.seed, "frequency_penalty": 0.0,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    raise GenerationError(f"{self.settings.base_url} answered {resp.status_code}: {resp.read().decode()[:300]}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    choice = (json.loads(data).get("choices") or [{}])[0]
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
        except httpx.TimeoutException as e:
            raise GenerationError(f"the generation endpoint {self.settings.base_url} did not answer within "
                                  f"{self.settings.request_timeout_s:g} s; try again") from e
        except httpx.HTTPError as e:
            raise GenerationError(f"cannot reach the generation endpoint {self.settings.base_url}: {e}") from e

    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        import httpx

        body = {"model": self.settings.adapter or self.model_id, "messages": list(messages), "max_tokens": 1,
                "temperature": 0.0, "logprobs": True, "top_logprobs": 20}
        try:
            resp = self.client.post("/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise GenerationError(f"cannot reach the generation endpoint {self.settings.base_url}: {e}") from e
        if resp.status_code != 200:
            raise GenerationError(f"{self.settings.base_url} answered {resp.status_code}: {resp.text[:300]}")
        content = ((resp.json().get("choices") or [{}])[0].get("logprobs") or {}).get("content") or []
        if not content or not content[0].get("top_logprobs"):
            raise GenerationError(f"{self.settings.base_url} returned no logprobs (a llama.cpp server needs --logits_all true)")
        top = {t["token"].strip(): t["logprob"] for t in content[0]["top_logprobs"]}
        # A choice outside the top 20 is at most as likely as the least likely listed one.
        floor = min(top.values())
        return [float(top.get(c.strip(), floor)) for c in choices]

    def close(self) -> None:
        self.client.close()

"""``openai``: any OpenAI-compatible endpoint (vLLM with multi-LoRA, llama.cpp server,
TGI), for deployments that outgrow one machine. The server applies the chat template;
a local tokenizer (``generation.tokenizer``) makes context budgets exact.

With ``generation.server: vllm`` and a PEFT folder as the adapter (what ``adapter:
promoted`` resolves to), the adapter is loaded into the running vLLM when the generator is
made (a refusal fails it, so a promotion that does not load leaves the old adapter
serving) and asked for by its served name; a vLLM restarted without it gets it again."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Iterator, Sequence

from .base import GenerationError, Generator, Message, SamplingParams
from .models import bundled_gguf, model_id
from .templates import CHATML, HFChat, gguf_vocabulary, render_template

INSTALL_HINT = "pip install httpx"
SERVER_DIED = "the model server stopped during this answer; ask again once it is back"


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
        self.vllm = settings.server == "vllm"
        # A PEFT folder (the registry's promoted adapter) that vLLM loads at run time.
        self.lora_path = (str(Path(settings.adapter).resolve())
                          if self.vllm and settings.adapter and Path(settings.adapter).is_dir() else None)
        self._lora_name: str | None = None
        if self.lora_path:
            self.served_adapter()  # loaded now: a refusal fails here, before any turn is switched to it

    @property
    def model_id(self) -> str:
        if self.settings.model:
            return self.settings.model
        # vLLM serves the bundled model's HF copy under the GGUF's content id (scripts/vllm.sh).
        return model_id(bundled_gguf()) if self.vllm else "default"

    @property
    def adapter_id(self) -> str | None:
        if self.lora_path:
            return f"vLLM LoRA {self._lora_name or lora_name(Path(self.lora_path))}"
        return self.settings.adapter

    def served_adapter(self) -> str:
        """The name the server knows this generator's PEFT folder by, loading it first when
        it does not (a new promotion, or a server restarted since)."""
        from .vllm import load_lora, served_loras

        if self._lora_name is None:
            served = served_loras(self.settings.base_url, self.client)
            name = next((n for n, root in served.items() if root and Path(root).resolve() == Path(self.lora_path)), None)
            if name is None:
                name = lora_name(Path(self.lora_path))
                load_lora(self.settings.base_url, name, self.lora_path, self.client)
            self._lora_name = name
        return self._lora_name

    def _requested_model(self) -> str:
        if self.lora_path:
            return self.served_adapter()
        return self.settings.adapter or self.model_id

    def describe(self) -> dict[str, str | None]:
        described = super().describe()
        if self.vllm:
            described["model"] = f"{self.model_id} on vLLM at {self.settings.base_url}"
        return described

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def _body(self, messages: Sequence[Message], **kw) -> dict:
        body = {"model": self._requested_model(), "messages": list(messages), **kw}
        if self.vllm:  # vLLM's own sampling parameter; a plain OpenAI server may refuse it
            body["repetition_penalty"] = self.settings.repeat_penalty
        return body

    def _post(self, body_for, stream: bool):
        """Send the request; a vLLM restarted without this generator's runtime-loaded adapter
        answers 404 for its name: the adapter is loaded again and the request sent once more."""
        request = self.client.build_request("POST", "/chat/completions", json=body_for())
        resp = self.client.send(request, stream=stream)
        if resp.status_code == 404 and self.lora_path:
            resp.close()
            self._lora_name = None
            resp = self.client.send(self.client.build_request("POST", "/chat/completions", json=body_for()),
                                    stream=stream)
        return resp

    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        import httpx

        def body_for():
            # vLLM serves each LoRA under its own model name: the adapter is the model to ask for.
            body = self._body(messages, stream=True, max_tokens=params.max_tokens, temperature=params.temperature,
                              top_p=params.top_p, seed=params.seed, frequency_penalty=0.0)
            if params.stop:
                body["stop"] = list(params.stop)
            return body

        started = False
        try:
            resp = self._post(body_for, stream=True)
            try:
                if resp.status_code != 200:
                    raise GenerationError(f"{self.settings.base_url} answered {resp.status_code}: {resp.read().decode()[:300]}")
                for line in resp.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    choice = (json.loads(data).get("choices") or [{}])[0]  # a line cut off fails here
                    started = True
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
                if self.vllm:  # vLLM always ends with [DONE]: without it the server died mid-answer
                    raise GenerationError(SERVER_DIED)
            finally:
                resp.close()
        except httpx.TimeoutException as e:
            raise GenerationError(f"the generation endpoint {self.settings.base_url} did not answer within "
                                  f"{self.settings.request_timeout_s:g} s; try again") from e
        except (httpx.HTTPError, json.JSONDecodeError) as e:
            if started:
                raise GenerationError(f"{SERVER_DIED} ({type(e).__name__})") from e
            raise GenerationError(f"cannot reach the generation endpoint {self.settings.base_url}: {e}") from e

    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        import httpx

        def body_for():
            return self._body(messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)

        try:
            resp = self._post(body_for, stream=False)
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


def lora_name(path: Path) -> str:
    """The served name for a PEFT folder: ``medical-v0003`` for the registry's
    ``adapters/medical/v0003/adapter``, else the folder's name."""
    if path.name == "adapter" and path.parent.name.startswith("v"):
        return f"{path.parent.parent.name}-{path.parent.name}"
    return path.name

"""The one generation interface: chat messages in, streamed text out, with token
counting against the model's context window. Backends live in their own files and are
created through ``registry.create_generator``."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Sequence

from ..settings import GenerationSettings

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}, the OpenAI shape


class GenerationError(RuntimeError):
    """Generation failed for a reason the user can act on (the message says which)."""


class ContextOverflow(GenerationError):
    """The prompt plus the reserved answer does not fit the model's context window."""


class GeneratorBusy(GenerationError):
    """Every generation slot and the waiting queue are taken; ``retry`` is worth it shortly
    (the /v1 API answers HTTP 429 with Retry-After)."""

    def __init__(self) -> None:
        super().__init__("the assistant is busy answering other questions; try again in a moment")


class Admission:
    """At most ``slots`` generations at once and ``queue`` turns waiting, each at most
    ``wait_s``: a turn beyond that fails at once instead of waiting without end."""

    def __init__(self, slots: int, queue: int, wait_s: float):
        self.slots, self.capacity, self.wait_s = slots, slots + queue, wait_s
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + queue)

    @contextmanager
    def slot(self, wait: bool = True) -> Iterator[None]:
        """``wait`` False: a free slot now or ``GeneratorBusy`` (for callers with an answer
        of their own to give instead, such as a tool's code-written summary)."""
        if not self._admitted.acquire(blocking=False):
            raise GeneratorBusy()
        try:
            if not self._running.acquire(timeout=self.wait_s if wait else 0):
                raise GeneratorBusy()
            try:
                yield
            finally:
                self._running.release()
        finally:
            self._admitted.release()


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    seed: int = 0
    stop: tuple[str, ...] = field(default_factory=tuple)


class StopScanner:
    """Cuts a token stream at the first stop string, holding back any tail that could
    still become one, for backends without native stop strings."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.buffer += piece
        hits = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.buffer = self.buffer[: min(hits)], ""
            return out
        hold = max((n for s in self.stops for n in range(1, len(s)) if self.buffer.endswith(s[:n])), default=0)
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(out):]
        return out

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


class Generator(ABC):
    """A loaded model. In-process backends generate one turn at a time (llama.cpp contexts
    and HF models are not safe to share between concurrent generations); a ``concurrent``
    one (a model server) up to ``generation.max_concurrency``. Either way at most
    ``generation.max_queue`` turns wait, and a turn beyond that fails as ``GeneratorBusy``."""

    name: ClassVar[str]
    concurrent: ClassVar[bool] = False
    # The registry version served (e.g. ``medical/v0003``), set when the adapter came from it.
    adapter_version: str | None = None

    def __init__(self, settings: GenerationSettings):
        self.settings = settings
        slots = settings.max_concurrency if self.concurrent else 1
        self.admission = Admission(slots, settings.max_queue, settings.queue_timeout_s)

    # -- what a backend provides ------------------------------------------------------
    @property
    @abstractmethod
    def model_id(self) -> str:
        """Model name plus a short content hash where the weights are local."""

    @property
    def adapter_id(self) -> str | None:
        return self.settings.adapter

    @property
    def context_window(self) -> int:
        return self.settings.context_window

    @abstractmethod
    def render(self, messages: Sequence[Message]) -> str:
        """The prompt text the model sees: the chat template applied, generation prompt added."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the model tokenizes a rendered prompt (special tokens parsed)."""

    @abstractmethod
    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        ...

    @abstractmethod
    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        ...

    # -- the interface ----------------------------------------------------------------
    def count_messages(self, messages: Sequence[Message]) -> int:
        return self.count_tokens(self.render(messages))

    def params(self, max_tokens: int | None = None, stop: Sequence[str] = (), temperature: float | None = None) -> SamplingParams:
        s = self.settings
        return SamplingParams(
            max_tokens=max_tokens or s.max_new_tokens,
            temperature=s.temperature if temperature is None else temperature,
            top_p=s.top_p, repeat_penalty=s.repeat_penalty, seed=s.seed, stop=tuple(stop),
        )

    def stream(self, messages: Sequence[Message], *, max_tokens: int | None = None, stop: Sequence[str] = (),
               temperature: float | None = None, wait: bool = True) -> Iterator[str]:
        params = self.params(max_tokens, stop, temperature)
        used = self.count_messages(messages)
        if used + params.max_tokens > self.context_window:
            raise ContextOverflow(
                f"prompt of {used} tokens plus {params.max_tokens} for the answer exceeds the "
                f"{self.context_window}-token context window of {self.model_id}")
        # Held while the caller iterates: closing the stream (a stop, a dropped client) frees the slot.
        with self.admission.slot(wait):
            yield from self._stream(messages, params)

    def choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        """Log-probability (over the whole vocabulary) of each choice's first token as the
        first token of the reply: the model as a classifier, in one forward pass, with no
        sampling and no parsing of free text."""
        used = self.count_messages(messages)
        if used + 1 > self.context_window:
            raise ContextOverflow(f"prompt of {used} tokens exceeds the {self.context_window}-token context window of {self.model_id}")
        with self.admission.slot():
            return self._choice_logprobs(messages, tuple(choices))

    def generate(self, messages: Sequence[Message], **kw) -> str:
        return "".join(self.stream(messages, **kw))

    def describe(self) -> dict[str, str | None]:
        adapter = self.adapter_id
        if self.adapter_version:
            adapter = f"{self.adapter_version} ({adapter or 'merged into the model'})"
        return {"backend": self.name, "model": self.model_id, "adapter": adapter}

    def close(self) -> None:
        """Release the model; the default relies on garbage collection."""

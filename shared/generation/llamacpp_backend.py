"""``llamacpp``: llama-cpp-python on a GGUF file, the CPU default; applies a GGUF LoRA
adapter (``generation.adapter``) when given."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Iterator, Sequence

from .base import GenerationError, Generator, Message, SamplingParams
from .models import local_gguf, model_id
from .templates import GGUFTokenizer, end_of_turn

INSTALL_HINT = "pip install llama-cpp-python"


def is_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppGenerator(Generator):
    name = "llamacpp"

    def __init__(self, settings, state_dir: Path):
        super().__init__(settings)
        from llama_cpp import Llama

        path = self._path = local_gguf(settings, "llamacpp")
        try:
            self.llm = Llama(
                model_path=str(path), n_ctx=settings.context_window, n_threads=settings.threads or os.cpu_count(),
                lora_path=settings.adapter, seed=settings.seed, verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise GenerationError(f"llama.cpp could not load {path.name}: {e}") from e
        self.tokenizer = GGUFTokenizer(self.llm)
        self.end_of_turn = end_of_turn(self.tokenizer.render)

    @property
    def model_id(self) -> str:
        return model_id(self._path)

    @property
    def adapter_id(self) -> str | None:
        return model_id(Path(self.settings.adapter)) if self.settings.adapter else None

    def render(self, messages: Sequence[Message]) -> str:
        return self.tokenizer.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        stops = list(params.stop) + ([self.end_of_turn] if self.end_of_turn else [])
        # Reusing a cached prompt prefix evaluates the rest in a different batch shape,
        # which changes greedy output on near-ties: a fresh context keeps answers reproducible.
        self.llm.reset()
        chunks = self.llm.create_completion(
            self.render(messages), max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, repeat_penalty=params.repeat_penalty, seed=params.seed, stop=stops, stream=True,
        )
        for chunk in chunks:
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        import numpy as np

        llm = self.llm
        tokens = llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
        # Keep the cached prefix shared with the previous call (one clause asked several
        # questions re-evaluates only the question); at least one token is evaluated so
        # the logits are this prompt's.
        cached = llm.input_ids[: llm.n_tokens]
        keep = 0
        while keep < min(len(cached), len(tokens) - 1) and cached[keep] == tokens[keep]:
            keep += 1
        llm.n_tokens = keep
        llm.eval(tokens[keep:])
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        logprobs = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        return [float(logprobs[llm.tokenize(c.encode("utf-8"), add_bos=False, special=False)[0]]) for c in choices]

    def close(self) -> None:
        self.llm.close()

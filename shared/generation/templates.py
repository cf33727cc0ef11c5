"""Chat templates and token counting shared by the backends: a GGUF's (llamacpp, and
openai with a local GGUF tokenizer) and a Hugging Face tokenizer's (transformers,
unsloth, and openai with a local HF tokenizer)."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

from .base import Message

# Used only when a model ships no template of its own (ChatML, as SmolLM2/Qwen use).
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@lru_cache(maxsize=8)
def _compiled(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Sandboxed, as transformers does: a template is code that came with the model file.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(ValueError(msg))
    return env.from_string(template)


def render_template(template: str | None, messages: Sequence[Message], bos: str = "", eos: str = "") -> str:
    return _compiled(template or CHATML).render(
        messages=list(messages), add_generation_prompt=True, bos_token=bos, eos_token=eos)


def end_of_turn(render) -> str | None:
    """The marker a template puts after an assistant turn (``<|im_end|>`` for ChatML),
    found by rendering a probe; it is a stop string for every backend."""
    probe = "\x00probe\x00"
    text = render([{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}])
    tail = text.split(probe, 1)[1] if probe in text else ""
    marker = tail.strip().split("\n", 1)[0].strip() if tail.strip() else ""
    return marker or None


class HFChat:
    """Chat template and token counting of a loaded Hugging Face tokenizer."""

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def render(self, messages: Sequence[Message]) -> str:
        return self.tok.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])


def gguf_vocabulary(path: str) -> "GGUFTokenizer":
    """The tokenizer and template of a GGUF file, without its weights. llama.cpp's notice
    that a vocabulary-only load has no training context goes to the log, not the terminal."""
    import contextlib
    import io
    import logging

    from llama_cpp import Llama

    notices = io.StringIO()
    with contextlib.redirect_stderr(notices):
        llm = Llama(model_path=path, vocab_only=True, verbose=False)
    if notices.getvalue().strip():
        logging.getLogger(__name__).debug("llama.cpp: %s", notices.getvalue().strip())
    return GGUFTokenizer(llm)


class GGUFTokenizer:
    """Tokenizer and chat template of a GGUF file, from an open ``llama_cpp.Llama``
    (a full model, or ``vocab_only=True`` for counting alone)."""

    def __init__(self, llm):
        self.llm = llm
        meta = llm.metadata
        self.template = meta.get("tokenizer.chat_template")
        self.bos = self._piece(llm.token_bos())
        self.eos = self._piece(llm.token_eos())

    def _piece(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="ignore")

    def render(self, messages: Sequence[Message]) -> str:
        return render_template(self.template, messages, self.bos, self.eos)

    def count(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

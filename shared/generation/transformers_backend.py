"""``transformers``: a Hugging Face causal LM (a GGUF is dequantized once into a cached
safetensors copy) with an optional PEFT adapter. Also the base of the unsloth backend,
which only loads the model differently."""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Iterator, Sequence

from .base import GenerationError, Generator, Message, SamplingParams, StopScanner
from .models import dequantized_checkpoint, load_causal_lm, model_id, model_path, use_4bit
from .templates import HFChat, end_of_turn

INSTALL_HINT = "pip install transformers peft torch"


def is_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("transformers", "torch"))


class TransformersGenerator(Generator):
    name = "transformers"

    def __init__(self, settings, state_dir: Path):
        super().__init__(settings)
        source = model_path(settings.model)
        self._source = source
        if isinstance(source, Path) and source.suffix == ".gguf":
            source = dequantized_checkpoint(source, Path(state_dir) / "models")
        if settings.adapter and not (Path(settings.adapter) / "adapter_config.json").is_file():
            raise GenerationError(f"PEFT adapter directory not found (no adapter_config.json): {settings.adapter}")
        try:
            self.model, self.tokenizer = self._load(str(source))
        except OSError as e:
            raise GenerationError(f"could not load model {source}: {e}") from e
        self.model.eval()
        self.chat = HFChat(self.tokenizer)
        self.end_of_turn = end_of_turn(self.render)
        eot = self.tokenizer.convert_tokens_to_ids(self.end_of_turn) if self.end_of_turn else None
        # GGUF-derived tokenizers may name the wrong EOS; the template's end-of-turn is authoritative.
        self._eos_ids = sorted({i for i in (eot, self.tokenizer.eos_token_id) if isinstance(i, int) and i >= 0})

    def _load(self, source: str):
        from transformers import AutoTokenizer

        model = load_causal_lm(source, use_4bit(self.settings.load_in_4bit))
        if self.settings.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.settings.adapter)
        return model, AutoTokenizer.from_pretrained(source)

    @property
    def model_id(self) -> str:
        return model_id(self._source)

    def render(self, messages: Sequence[Message]) -> str:
        return self.chat.render(messages)

    def count_tokens(self, text: str) -> int:
        return self.chat.count(text)

    def _stream(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop_now = threading.Event()

        class _Halt(StoppingCriteria):
            # Lets the consumer end generation early (a stop string was seen).
            def __call__(self, input_ids, scores, **kw):
                return stop_now.is_set()

        inputs = self.tokenizer(self.render(messages), return_tensors="pt", add_special_tokens=False).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p} if params.temperature > 0 else {"do_sample": False}
        if params.temperature > 0:
            torch.manual_seed(params.seed)
        failure: list[BaseException] = []

        def run():
            try:
                with torch.inference_mode():
                    self.model.generate(
                        **inputs, max_new_tokens=params.max_tokens, repetition_penalty=params.repeat_penalty,
                        eos_token_id=self._eos_ids or None, pad_token_id=self._eos_ids[0] if self._eos_ids else None,
                        streamer=streamer, stopping_criteria=StoppingCriteriaList([_Halt()]), **sampling)
            except BaseException as e:  # re-raised in the consumer's thread
                failure.append(e)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        scanner = StopScanner(params.stop)
        try:
            for piece in streamer:
                out = scanner.feed(piece)
                if out:
                    yield out
                if scanner.stopped:
                    break
            tail = scanner.flush()
            if tail:
                yield tail
        finally:
            stop_now.set()
            worker.join()
        if failure:
            raise GenerationError(f"{self.name} generation failed: {failure[0]}") from failure[0]

    def _choice_logprobs(self, messages: Sequence[Message], choices: Sequence[str]) -> list[float]:
        import torch

        inputs = self.tokenizer(self.render(messages), return_tensors="pt", add_special_tokens=False).to(self.model.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        return [float(logprobs[self.tokenizer(c, add_special_tokens=False)["input_ids"][0]]) for c in choices]

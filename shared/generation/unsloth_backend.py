"""``unsloth``: Unsloth's ``FastLanguageModel`` with ``for_inference`` (4-bit on CUDA);
Unsloth 2026.10's CPU backend runs the same code here. Generation itself is the
transformers backend's; only loading differs."""
from __future__ import annotations

import importlib.util
import logging
import sys

from .models import use_4bit
from .transformers_backend import TransformersGenerator

INSTALL_HINT = "pip install unsloth==2026.10.9 unsloth_zoo==2026.10.9 --no-deps (see scripts/bootstrap.sh)"
log = logging.getLogger(__name__)


def is_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None and importlib.util.find_spec("torch") is not None


class UnslothGenerator(TransformersGenerator):
    name = "unsloth"

    def _load(self, source: str):
        if "transformers" in sys.modules and "unsloth" not in sys.modules:
            # Unsloth patches transformers at import; patches miss already-imported modules.
            log.warning("transformers was imported before unsloth; create the unsloth generator first")
        import unsloth  # noqa: F401  (must precede transformers)
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=self.settings.adapter or source, max_seq_length=self.settings.context_window,
            load_in_4bit=use_4bit(self.settings.load_in_4bit), dtype=None)
        FastLanguageModel.for_inference(model)
        return model, tokenizer

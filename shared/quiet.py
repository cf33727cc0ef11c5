"""Silence import-time notices of optional ML libraries that say nothing to our users."""
from __future__ import annotations

import logging


def quiet_ml_imports() -> None:
    """torchao and bitsandbytes, pulled in through peft by sentence-transformers, log
    deprecation and missing-kernel notices on import; the embedding path uses neither.
    torch must be imported first: it configures its loggers on import."""
    import torch  # noqa: F401

    for name in ("torch.utils._pytree", "bitsandbytes"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars for a 90 MB model on every start

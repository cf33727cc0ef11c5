"""Generation: one streaming interface over llama.cpp, transformers, unsloth and
OpenAI-compatible endpoints."""
from .base import ContextOverflow, GenerationError, Generator, GeneratorBusy, Message, SamplingParams, StopScanner
from .registry import BACKENDS, available_backends, create_generator, for_serving, is_available, resolve, shared_generator

__all__ = ["BACKENDS", "ContextOverflow", "GenerationError", "Generator", "GeneratorBusy", "Message", "SamplingParams",
           "StopScanner", "available_backends", "create_generator", "for_serving", "is_available", "resolve", "shared_generator"]

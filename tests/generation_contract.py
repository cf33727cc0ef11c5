"""The checks every generation backend must pass (minbpe-style: one contract, every
implementation). Run in-process by tests/test_generation.py, and in a subprocess for
unsloth (``python -m tests.generation_contract unsloth``), whose import patches
transformers for the rest of a process."""
from __future__ import annotations

import sys

CAPITAL = [{"role": "system", "content": "You are a concise assistant."},
           {"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]


def check_streams_text(gen) -> None:
    pieces = list(gen.stream(CAPITAL, max_tokens=32))
    assert len(pieces) > 1, f"expected several streamed pieces, got {pieces!r}"
    assert "Paris" in "".join(pieces), "the chat template is not applied: the model did not answer the question"


def check_max_tokens(gen) -> None:
    text = gen.generate(STORY, max_tokens=12)
    assert text.strip()
    assert gen.count_tokens(text) <= 12 + 2, f"asked for 12 tokens, got {gen.count_tokens(text)}: {text!r}"


def check_stop(gen) -> None:
    # Without the stop the answer names Paris (check_streams_text); with it, it must not.
    cut = gen.generate(CAPITAL, max_tokens=32, stop=["Paris"])
    assert "Paris" not in cut, cut
    assert "<|im_end|>" not in gen.generate(CAPITAL, max_tokens=32), "the end-of-turn marker must stop generation"


def check_token_counting(gen) -> None:
    rendered = gen.render(CAPITAL)
    assert "You are a concise assistant." in rendered and "What is the capital of France?" in rendered
    assert rendered != CAPITAL[1]["content"], "render must apply the chat template"
    n = gen.count_messages(CAPITAL)
    assert 15 <= n <= 60, n
    assert gen.count_tokens("hello world") in (2, 3)
    assert gen.count_tokens("hello world " * 50) > gen.count_tokens("hello world " * 10)


def check_context_budget(gen) -> None:
    from shared.generation import ContextOverflow

    huge = [{"role": "user", "content": "word " * (gen.context_window + 10)}]
    try:
        gen.generate(huge, max_tokens=8)
    except ContextOverflow as e:
        assert str(gen.context_window) in str(e)
    else:
        raise AssertionError("a prompt over the context window must raise ContextOverflow")


def check_choice_scoring(gen) -> None:
    # The scored choices agree with what the model generates greedily.
    first = gen.generate(CAPITAL, max_tokens=4).split()[0]
    other = "Banana" if first != "Banana" else "Tree"
    lp_first, lp_other = gen.choice_logprobs(CAPITAL, [first, other])
    assert lp_first <= 0 and lp_other <= 0, (lp_first, lp_other)
    assert lp_first > lp_other + 1, f"greedy first word {first!r} scored {lp_first:.2f}, {other!r} {lp_other:.2f}"
    again = gen.choice_logprobs(CAPITAL, [first, other])  # repeated calls are independent of cached state
    assert abs(again[0] - lp_first) < 0.05, (again, lp_first)


CHECKS = [check_streams_text, check_max_tokens, check_stop, check_token_counting, check_context_budget,
          check_choice_scoring]


def run_all(gen) -> None:
    for check in CHECKS:
        check(gen)


if __name__ == "__main__":
    import os
    from pathlib import Path

    from shared.generation import create_generator
    from shared.settings import GenerationSettings

    generator = create_generator(GenerationSettings(backend=sys.argv[1], context_window=1024), Path(os.environ["ASSISTANTS_STATE_DIR"]))
    run_all(generator)
    print(f"CONTRACT OK {generator.describe()}")

"""Generation benchmark: the suite's backends vs bare llama-cpp-python on the same GGUF,
same prompts, one process; and one end-to-end chat turn broken down.

  python benchmarks/generation.py [--repeats 3] [--max-tokens 96]

Measures (ratios are the suite over the baseline, measured in the same run):
  * tokens/s and time to first token of the ``llamacpp`` backend vs bare llama-cpp-python
    (both greedy, fresh context per prompt, same threads), and of the ``transformers``
    backend (the same GGUF dequantized, fp32);
  * an end-to-end finance chat turn on the sample corpus (embedded Postgres): retrieval,
    prompt build, first token, full answer; its first-token time over bare llama.cpp's
    first-token time on the very prompt the engine built.
Needs no ../shared data: it runs on the finance samples.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = [
    "Explain in detail how an index fund works and why its fees are low.",
    "Describe the difference between a traditional IRA and a Roth IRA.",
    "What should a person consider before paying off debt instead of investing?",
    "Explain diversification to a new investor with an example portfolio.",
    "Why do people keep an emergency fund, and where should it be kept?",
]
SYSTEM = "You are a helpful financial information assistant."


def messages(prompt: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def bare_run(llm, prompt_text: str, max_tokens: int) -> tuple[float, float, int]:
    """(ttft s, total s, tokens) of plain llama-cpp-python streaming."""
    llm.reset()
    t0 = time.perf_counter()
    first, text = None, ""
    for chunk in llm.create_completion(prompt_text, max_tokens=max_tokens, temperature=0.0, stream=True,
                                       stop=["<|im_end|>"]):
        if first is None:
            first = time.perf_counter() - t0
        text += chunk["choices"][0]["text"]
    total = time.perf_counter() - t0
    return first or total, total, len(llm.tokenize(text.encode(), add_bos=False, special=True))


def backend_run(gen, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    first, text = None, ""
    for piece in gen.stream(messages(prompt), max_tokens=max_tokens):
        if first is None:
            first = time.perf_counter() - t0
        text += piece
    total = time.perf_counter() - t0
    return first or total, total, gen.count_tokens(text)


def tps(runs) -> float:
    """Decode tokens/s: tokens after the first over the time after the first."""
    return sum(n - 1 for _, _, n in runs) / sum(total - first for first, total, _ in runs)


def med(values) -> float:
    return statistics.median(values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args()
    os.environ.setdefault("ASSISTANTS_STATE_DIR", tempfile.mkdtemp(prefix="bench-gen-"))

    from llama_cpp import Llama

    from assistants.domains import samples_dir, settings_for
    from shared.generation import create_generator
    from shared.generation.models import bundled_gguf
    from shared.runtime import Runtime

    settings = settings_for("finance")
    threads = os.cpu_count()
    ours = create_generator(settings.generation.model_copy(update={"backend": "llamacpp", "threads": threads}), settings.state_dir)
    bare = Llama(model_path=str(bundled_gguf()), n_ctx=settings.generation.context_window, n_threads=threads, verbose=False, seed=0)
    hf = create_generator(settings.generation.model_copy(update={"backend": "transformers"}), settings.state_dir)

    runs: dict[str, list] = {"bare": [], "llamacpp": [], "transformers": []}
    for r in range(args.repeats):
        for i, p in enumerate(PROMPTS):
            text = ours.render(messages(p))
            order = ["bare", "llamacpp"] if (r + i) % 2 == 0 else ["llamacpp", "bare"]  # alternate: fair warm-up
            for name in order:
                runs[name].append(bare_run(bare, text, args.max_tokens) if name == "bare" else backend_run(ours, p, args.max_tokens))
        if r == 0:
            runs["transformers"] = [backend_run(hf, p, args.max_tokens) for p in PROMPTS]
    for name, rs in runs.items():
        print(f"{name:13s} decode {tps(rs):7.1f} tok/s   ttft p50 {med([f for f, _, _ in rs]) * 1000:7.1f} ms   ({len(rs)} runs)")

    # End to end: a real finance turn on the samples, vs bare llama.cpp on the same final prompt.
    rt = Runtime(settings)
    rt.__dict__["generator"] = ours
    rt.ingestor().run([samples_dir("finance")], prune=True, progress=False)
    engine = rt.chat_engine()
    questions = settings.chat.examples
    engine.ask(questions[0], principal="bench")  # warm-up: first query plans, first embedding
    parts, ratios = [], []
    from shared.chat import prompt as prompt_mod

    for r in range(args.repeats):
        for q in questions:
            turn = engine.ask(q, principal="bench")
            if not turn.grounded:
                continue
            t = turn.timings
            parts.append(t)
            plan = prompt_mod.build(ours, settings.chat.system_prompt, [], q, turn.passages, settings.generation.max_new_tokens)
            bare_first, _, _ = bare_run(bare, ours.render(plan.messages), 8)
            ratios.append((t["first_token_ms"] / 1000) / bare_first)
    keys = ["retrieval_ms", "prompt_ms", "first_token_ms", "total_ms"]
    print("e2e turn p50: " + "  ".join(f"{k} {med([p[k] for p in parts]):.1f}" for k in keys) + f"   ({len(parts)} turns)")
    rt.close()
    if rt.db.embedded:
        rt.db.stop_embedded()

    llamacpp_ratio = tps(runs["llamacpp"]) / tps(runs["bare"])
    hf_ratio = tps(runs["transformers"]) / tps(runs["bare"])
    print(f"RESULT llamacpp_tps_ratio={llamacpp_ratio:.2f} transformers_tps_ratio={hf_ratio:.2f} "
          f"e2e_ttft_over_bare_ttft={med(ratios):.2f}")


if __name__ == "__main__":
    main()

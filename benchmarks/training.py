"""Training benchmark: the suite's recipe vs a plain transformers + PEFT loop on the same
model, data and LoRA; then llama.cpp generation with the exported adapter vs the base GGUF.

  python benchmarks/training.py [--examples 64] [--batch 4] [--seq 384] [--gen-tokens 128]

Legs:
  * recipe: ``shared.finetune.train.train`` (Unsloth FastLanguageModel + TRL SFTTrainer,
    loss on answers only), eval and checkpoints pushed past the run so only training is timed;
  * plain: the same base model through transformers + PEFT with a hand-written loop (same
    examples, batch size, LoRA, AdamW learning rate, answer-only loss, right padding).
  Each leg runs in a child process of this script: Unsloth patches transformers at import,
  so the plain baseline must never share a process with it, and peak memory is per process
  (CPU: peak RSS; CUDA: peak allocated). Both legs train one epoch over the same examples,
  so tokens/s = the examples' tokens / training seconds.
  * generation: tokens/s of llama.cpp with the recipe's adapter exported to GGUF vs the base
    GGUF alone, same prompts, end of text suppressed so all decode exactly --gen-tokens:
    the export merged into a copy of the GGUF (what the llamacpp backend serves by default,
    the RESULT figure) and the GGUF LoRA applied at run time (generation.merge_adapter: false).

Data: the medical recipe (medical/train.yaml: the self-written sample set, plus MedQuAD and
PubMedQA when ../shared/data exists), first --examples training rows.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["I have had a mild headache for two days. What could cause it?",
           "What does hypertension mean?", "What are early signs of type 2 diabetes?"]


def config(args):
    """The medical recipe's arguments, sized to one epoch over --examples rows."""
    from assistants.domains import domain_dir
    from shared.finetune.config import load_finetune_config

    steps = args.examples // args.batch
    return load_finetune_config(domain_dir("medical"), {"train": {
        "max_steps": steps, "batch_size": args.batch, "grad_accum": 1, "max_seq_length": args.seq,
        "eval_steps": steps + 1, "save_steps": steps + 1, "logging_steps": steps, "warmup_steps": 0}})


def prepare(args, run_dir: Path) -> int:
    """Writes the rows both legs train on; returns their token count (as trained: truncated)."""
    from assistants.domains import domain_dir, settings_for
    from shared.finetune import data as data_mod

    cfg = config(args)
    train_rows, val_rows, _ = data_mod.prepare(cfg.data, domain_dir("medical"), settings_for("medical").chat.system_prompt)
    if len(train_rows) < args.examples:
        raise SystemExit(f"only {len(train_rows)} training rows; lower --examples")
    data_mod.write(train_rows[:args.examples], run_dir / "data" / "train.jsonl")
    data_mod.write(val_rows[:4], run_dir / "data" / "validation.jsonl")
    tok = _tokenizer(base_dir())
    return sum(len(ids) for ids, _ in (encode(tok, r, args.seq) for r in train_rows[:args.examples]))


def base_dir() -> str:
    from assistants.domains import settings_for
    from shared.finetune.run import base_checkpoint

    return base_checkpoint(settings_for("medical"), None)[0]


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def encode(tok, row: dict, seq: int) -> tuple[list[int], int]:
    """(token ids of prompt + answer, prompt length): the conversational prompt-completion
    rendering TRL uses, truncated to the training length."""
    prompt = tok.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    p_ids = tok(prompt, add_special_tokens=False).input_ids
    ids = tok(full, add_special_tokens=False).input_ids
    return ids[:seq], min(len(p_ids), seq)


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def leg_recipe(args, run_dir: Path) -> dict:
    from shared.finetune.gguf_export import export
    from shared.finetune.train import resolve_engine, train

    engine = resolve_engine(None)
    base = base_dir()
    result = train(config(args), base, run_dir, engine=engine, progress=False)
    export(result.adapter_dir, Path(base) / "config.json", run_dir / "adapter.gguf")
    return {"engine": engine, "seconds": result.metrics["train_seconds"], "steps": result.metrics["steps"],
            "peak_mb": peak_memory_mb()}


def leg_plain(args, run_dir: Path) -> dict:
    import torch

    from shared.finetune.train import load_model

    cfg = config(args)
    torch.manual_seed(cfg.train.seed)
    model, tok = load_model(cfg, base_dir(), "transformers+peft")
    rows = [json.loads(line) for line in (run_dir / "data" / "train.jsonl").read_text().splitlines()]
    batches = [rows[i:i + args.batch] for i in range(0, len(rows), args.batch)]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.train.learning_rate)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    model.train()
    t0 = time.perf_counter()
    for batch in batches:
        enc = [encode(tok, r, args.seq) for r in batch]
        width = max(len(ids) for ids, _ in enc)
        input_ids = torch.full((len(enc), width), pad)
        labels = torch.full((len(enc), width), -100)
        mask = torch.zeros((len(enc), width), dtype=torch.long)
        for i, (ids, p_len) in enumerate(enc):
            input_ids[i, :len(ids)] = torch.tensor(ids)
            labels[i, p_len:len(ids)] = torch.tensor(ids[p_len:])
            mask[i, :len(ids)] = 1
        loss = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device),
                     labels=labels.to(model.device)).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return {"engine": "transformers+peft loop", "seconds": time.perf_counter() - t0, "steps": len(batches),
            "peak_mb": peak_memory_mb()}


def child(leg: str, args, run_dir: Path) -> dict:
    cmd = [sys.executable, __file__, "--leg", leg, "--run-dir", str(run_dir), "--examples", str(args.examples),
           "--batch", str(args.batch), "--seq", str(args.seq)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{leg} leg failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def generation_tps(adapter: Path, n_tokens: int, repeats: int) -> dict[str, float]:
    """Median tokens/s of base, merged and runtime-LoRA, runs interleaved so drift hits all alike."""
    from shared.finetune.gguf_export import merge
    from shared.generation import create_generator
    from shared.generation.models import bundled_gguf
    from shared.settings import GenerationSettings

    merged = merge(bundled_gguf(), adapter, adapter.with_name("merged.gguf"))
    state = Path(tempfile.gettempdir())
    variants = {"base": {}, "merged": {"model": str(merged)}, "lora": {"adapter": str(adapter)}}
    gens = {name: create_generator(GenerationSettings(backend="llamacpp", context_window=1024, **kw), state)
            for name, kw in variants.items()}
    rates: dict[str, list[float]] = {name: [] for name in gens}
    for _ in range(repeats):
        for prompt in PROMPTS:
            for name, gen in gens.items():
                llm = gen.llm
                # No end of text: both decode exactly n_tokens, whatever the adapter prefers to say.
                bias = {llm.token_eos(): -1e9, **{t: -1e9 for t in llm.tokenize(b"<|im_end|>", add_bos=False, special=True)}}
                llm.reset()
                t0 = time.perf_counter()
                out = llm.create_completion(gen.render([{"role": "user", "content": prompt}]), max_tokens=n_tokens,
                                            temperature=0.0, logit_bias=bias)
                dt = time.perf_counter() - t0
                rates[name].append(out["usage"]["completion_tokens"] / dt)
    for gen in gens.values():
        gen.close()
    return {name: statistics.median(r) for name, r in rates.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=64, help="training rows (one epoch)")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=384, help="max sequence length")
    p.add_argument("--gen-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--leg", choices=["recipe", "plain"], help=argparse.SUPPRESS)
    p.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.leg:
        print(json.dumps((leg_recipe if args.leg == "recipe" else leg_plain)(args, args.run_dir)))
        return
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        run_dir = Path(tmp)
        tokens = prepare(args, run_dir)
        legs = {}
        for leg in tqdm(["plain", "recipe"], desc="training legs"):
            legs[leg] = child(leg, args, run_dir)
        for leg, r in legs.items():
            print(f"{leg:7s} {r['engine']:24s} {r['steps']} steps  {tokens / r['seconds']:8.1f} tokens/s  "
                  f"peak {r['peak_mb']:.0f} MB")
        tps = generation_tps(run_dir / "adapter.gguf", args.gen_tokens, args.repeats)
    print(f"llama.cpp generation: base {tps['base']:.1f} tokens/s; adapter merged {tps['merged']:.1f} tokens/s; "
          f"adapter as run-time LoRA {tps['lora']:.1f} tokens/s ({tps['lora'] / tps['base']:.2f}x)")
    train_ratio = (tokens / legs["recipe"]["seconds"]) / (tokens / legs["plain"]["seconds"])
    print(f"peak memory ratio (recipe / plain): {legs['recipe']['peak_mb'] / legs['plain']['peak_mb']:.2f}")
    print(f"RESULT train_tps_ratio={train_ratio:.2f} adapter_gen_tps_ratio={tps['merged'] / tps['base']:.2f}")


if __name__ == "__main__":
    main()

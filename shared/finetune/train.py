"""One training recipe: Unsloth ``FastLanguageModel`` (4-bit NF4 on CUDA, full-precision
LoRA on CPU) + ``get_peft_model`` + TRL ``SFTTrainer`` on responses only, with validation
loss, checkpoints and resume. Without unsloth: the same arguments on plain transformers +
PEFT + TRL, writing the same adapter format (and the run says which it used)."""
from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..generation.models import cuda, load_causal_lm, use_4bit
from .config import FinetuneConfig

log = logging.getLogger(__name__)


def unsloth_available() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def resolve_engine(engine: str | None) -> str:
    """``unsloth`` when importable; importing it here, first, because it patches
    transformers at import and misses modules imported before it."""
    engine = engine or ("unsloth" if unsloth_available() else "transformers+peft")
    if engine == "unsloth":
        import unsloth  # noqa: F401
    return engine


@dataclass
class TrainResult:
    adapter_dir: Path
    engine: str            # "unsloth" or "transformers+peft"
    metrics: dict
    resumed_from: str | None


def load_model(cfg: FinetuneConfig, base_dir: str, engine: str):
    """(model with LoRA attached, tokenizer) on the chosen engine."""
    lora, four_bit = cfg.lora, use_4bit(cfg.train.load_in_4bit)
    if engine == "unsloth":
        import unsloth  # noqa: F401  (before transformers)
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=base_dir, max_seq_length=cfg.train.max_seq_length, load_in_4bit=four_bit, dtype=None)
        model = FastLanguageModel.get_peft_model(
            model, r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=lora.target_modules,
            bias="none", use_gradient_checkpointing="unsloth" if cuda() else False, random_state=cfg.train.seed)
        return model, tokenizer
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer

    model = load_causal_lm(base_dir, four_bit)
    if four_bit:
        model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=lora.target_modules, bias="none", task_type="CAUSAL_LM"))
    return model, AutoTokenizer.from_pretrained(base_dir)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint. The Trainer writes ``trainer_state.json`` last, so a
    process stopped while saving leaves a folder without it, which cannot be resumed from."""
    ckpts = sorted((p for p in out_dir.glob("checkpoint-*") if (p / "trainer_state.json").is_file()),
                   key=lambda p: int(p.name.split("-")[1]))
    return ckpts[-1] if ckpts else None


def _step_callback(on_step: Callable[[int, int], None]):
    """``on_step(step, max_steps)`` after every optimizer step (a background job's progress)."""
    from transformers import TrainerCallback

    class StepCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            on_step(state.global_step, state.max_steps)

    return StepCallback()


def train(cfg: FinetuneConfig, base_dir: str, run_dir: Path, *, engine: str, resume: bool = False,
          progress: bool = True, on_step: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train on ``run_dir/data/{train,validation}.jsonl``; checkpoints in ``run_dir/checkpoints``,
    the adapter in ``run_dir/adapter``. ``resume`` continues from the newest checkpoint.
    ``engine``: what ``resolve_engine`` chose, resolved once by the caller before anything
    imported transformers."""
    if engine != "unsloth":
        print("unsloth is not importable: training with transformers + PEFT + TRL (same arguments, same adapter format)",
              file=sys.stderr)
    model, tokenizer = load_model(cfg, base_dir, engine)
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    data = load_dataset("json", data_files={"train": str(run_dir / "data" / "train.jsonl"),
                                            "validation": str(run_dir / "data" / "validation.jsonl")})
    data = data.remove_columns([c for c in data["train"].column_names if c not in ("prompt", "completion")])
    t = cfg.train
    out = run_dir / "checkpoints"
    args = SFTConfig(
        output_dir=str(out), num_train_epochs=t.epochs, max_steps=t.max_steps, learning_rate=t.learning_rate,
        warmup_steps=t.warmup_steps, lr_scheduler_type="linear", per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size, gradient_accumulation_steps=t.grad_accum, max_length=t.max_seq_length,
        eval_strategy="steps", eval_steps=t.eval_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit, logging_steps=t.logging_steps, seed=t.seed, data_seed=t.seed,
        completion_only_loss=True,  # loss on the assistant's answer only, never on the question
        bf16=cuda(), fp16=False, use_cpu=not cuda(), report_to="none", disable_tqdm=not progress,
        dataloader_num_workers=0, packing=False,
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=data["train"], eval_dataset=data["validation"],
                         processing_class=tokenizer, callbacks=[_step_callback(on_step)] if on_step else None)
    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        log.warning("--resume: no checkpoint in %s, starting from the beginning", out)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_s = time.perf_counter() - t0
    val = trainer.evaluate()
    with model.disable_adapter():
        base_val = trainer.evaluate()  # the bar an adapter must clear to be promotable
    adapter_dir = run_dir / "adapter"
    model.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    metrics = {
        "val_loss": round(float(val["eval_loss"]), 5), "base_val_loss": round(float(base_val["eval_loss"]), 5),
        "train_loss": round(float(result.training_loss), 5), "steps": int(result.global_step),
        "train_seconds": round(train_s, 1), "train_examples": len(data["train"]), "val_examples": len(data["validation"]),
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return TrainResult(adapter_dir, engine, metrics, str(checkpoint) if checkpoint else None)

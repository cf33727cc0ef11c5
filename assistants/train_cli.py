"""``assistants train|adapters``: fine-tuning a domain's adapter (``train.yaml``) and the
registry of adapters it writes: list, show, and promote through the domain's gate."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from shared.finetune.config import load_finetune_config

from .common import command, runtime
from .domains import domains, domain_dir, settings_for


def cmd_train(args) -> int:
    from shared.finetune.jobs import JobQueue, StepReporter
    from shared.finetune.run import run_training

    overrides = {"train": {"max_steps": args.max_steps}} if args.max_steps else None
    with contextlib.ExitStack() as stack:
        # A background job (`up` runs it): its step and estimate go to Postgres for the UIs.
        queue = JobQueue(stack.enter_context(runtime(args.domain)).db) if args.job else None
        adapter = run_training(settings_for(args.domain), resume=args.resume, overrides=overrides, engine=args.engine,
                               progress=not args.quiet, config_path=args.config,
                               on_step=StepReporter(queue, args.job) if queue else None)
        if queue:
            queue.registered(args.job, adapter.version)
    m = adapter.manifest["metrics"]
    print(f"[{args.domain}] registered adapter {adapter.version} ({adapter.manifest['engine']}): "
          f"val_loss {m['val_loss']} vs base {m['base_val_loss']}, {m['steps']} steps in {m['train_seconds']} s")
    print(f"data card: {adapter.manifest['run_dir']}/data_card.md; promote with: assistants adapters promote {args.domain} {adapter.version}"
          " (a running server switches at its next turn)")
    return 0


def cmd_adapters(args) -> int:
    from shared.finetune import AdapterRegistry, PromotionRefused

    reg = AdapterRegistry(settings_for(args.domain).state_dir, args.domain)
    if args.action == "list":
        promoted = reg.promoted()
        for a in reg.versions():
            m = a.manifest["metrics"]
            mark = "*" if promoted and promoted.version == a.version else " "
            print(f"{mark} {a.version}  val_loss {m['val_loss']:.4f} (base {m['base_val_loss']:.4f})  "
                  f"{a.manifest['engine']}  {a.manifest['created_at']}  data {a.manifest['dataset_hash'][:12]}")
        if not reg.versions():
            print(f"no adapters for {args.domain} yet: assistants train {args.domain}")
        return 0
    if not args.version:
        print("error: a VERSION is required", file=sys.stderr)
        return 2
    try:
        if args.action == "show":
            print(json.dumps(reg.get(args.version).manifest, indent=2))
        else:
            from shared.finetune.serving import check_base

            # Refused here, not at the next turn: a LoRA is meaningless on other base weights.
            check_base(reg.get(args.version), settings_for(args.domain).generation.model)
            print(reg.promote(args.version, load_finetune_config(domain_dir(args.domain)).metric))
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    except PromotionRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    return 0

def register(sub) -> None:
    """Add ``train`` and ``adapters`` to the top-level subparsers of ``assistants``."""
    tr = command(sub, "train", cmd_train, "fine-tune the domain's adapter (train.yaml) and register it", quiet=True)
    tr.add_argument("--resume", action="store_true", help="continue the newest unfinished run from its last checkpoint")
    tr.add_argument("--max-steps", type=int, help="override train.max_steps")
    tr.add_argument("--config", type=Path, help="a train.yaml other than the domain's")
    tr.add_argument("--engine", choices=["unsloth", "transformers+peft"], help="default: unsloth when importable")
    tr.add_argument("--job", type=int, help=argparse.SUPPRESS)  # run by `up` for a queued job: progress to Postgres

    ad = command(sub, "adapters", cmd_adapters, "list, show or promote registered adapters", domain=False)
    ad.add_argument("action", choices=["list", "show", "promote"])
    ad.add_argument("domain", choices=domains())
    ad.add_argument("version", nargs="?")

"""``assistants train DOMAIN``: prepare data (with its card), train, export, register."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..generation.models import dequantized_checkpoint, file_sha256, model_id, model_path
from ..settings import Settings
from . import data as data_mod
from .config import load_finetune_config
from .registry import Adapter, AdapterRegistry


def runs_dir(settings: Settings) -> Path:
    return Path(settings.state_dir) / "finetune" / settings.domain.name


def _resumable(settings: Settings) -> Path | None:
    """The newest run that has prepared data but no registered adapter."""
    runs = sorted(p for p in runs_dir(settings).glob("run-*") if (p / "data" / "train.jsonl").is_file())
    return next((p for p in reversed(runs) if not (p / "registered.json").is_file()), None)


def base_checkpoint(settings: Settings, configured: str | None) -> tuple[str, str, str | None]:
    """(loadable HF dir or id, model id, sha256 of the weights file when local)."""
    src = model_path(configured or settings.generation.model)
    if isinstance(src, Path) and src.suffix == ".gguf":
        return str(dequantized_checkpoint(src, Path(settings.state_dir) / "models")), model_id(src), file_sha256(src)
    return str(src), model_id(src), None


def run_training(settings: Settings, *, resume: bool = False, overrides: dict | None = None,
                 engine: str | None = None, progress: bool = True, config_path: Path | None = None,
                 on_step: Callable[[int, int], None] | None = None) -> Adapter:
    """Train the domain of ``settings`` (its train.yaml and data under ``settings.domain.root``)."""
    from .gguf_export import ExportError, export
    from .train import resolve_engine, train

    engine = resolve_engine(engine)  # before the base checkpoint is prepared with transformers
    domain_dir = Path(settings.domain.root)
    cfg = load_finetune_config(domain_dir, overrides, config_path)
    run_dir = _resumable(settings) if resume else None
    resume = run_dir is not None  # nothing unfinished: a new run
    if run_dir is None:
        run_dir = runs_dir(settings) / datetime.now(timezone.utc).strftime("run-%Y%m%dT%H%M%S%f")
        system = settings.system_message(cfg.data.system, cfg.data.system_prompt)
        train_rows, val_rows, card = data_mod.prepare(cfg.data, domain_dir, system)
        data_mod.write(train_rows, run_dir / "data" / "train.jsonl")
        data_mod.write(val_rows, run_dir / "data" / "validation.jsonl")
        (run_dir / "data_card.json").write_text(json.dumps(card.to_dict(), indent=2))
        (run_dir / "data_card.md").write_text(card.markdown())
        (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    else:
        # The interrupted run's own arguments, so the resumed run is the same run.
        cfg = load_finetune_config(domain_dir, json.loads((run_dir / "config.json").read_text()), config_path)
    card = json.loads((run_dir / "data_card.json").read_text())
    base_dir, base_id, base_sha = base_checkpoint(settings, cfg.base_model)
    result = train(cfg, base_dir, run_dir, resume=resume, engine=engine, progress=progress, on_step=on_step)
    gguf = None
    try:
        gguf = export(result.adapter_dir, Path(base_dir) / "config.json", run_dir / "adapter.gguf")
    except (ExportError, FileNotFoundError) as e:
        print(f"note: no GGUF export ({e}); the llamacpp backend cannot serve this adapter")
    manifest = {
        "base_model": base_id, "base_model_sha256": base_sha, "dataset_hash": card["dataset_hash"], "data_card": card,
        "args": cfg.to_dict(), "metrics": result.metrics, "engine": result.engine, "run_dir": str(run_dir),
        "resumed_from": result.resumed_from,
    }
    adapter = AdapterRegistry(settings.state_dir, settings.domain.name).register(result.adapter_dir, manifest, gguf)
    (run_dir / "registered.json").write_text(json.dumps({"version": adapter.version}))
    _note_trained_feedback(settings, run_dir, adapter.version)
    return adapter


def _note_trained_feedback(settings: Settings, run_dir: Path, version: str) -> None:
    """Reviewed chat feedback in this run's data records the adapter it went into (an
    erasure then knows which adapters' data cards to annotate)."""
    from ..candidates import Candidates, trained_candidates
    from ..db import Database

    rows = [json.loads(line) for part in ("train", "validation")
            for line in (run_dir / "data" / f"{part}.jsonl").read_text().splitlines()]
    ids = trained_candidates(rows)
    if ids:
        with Database.for_settings(settings) as db:
            Candidates(db, settings.domain.name).mark_trained(ids, version)

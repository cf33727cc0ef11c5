"""Versioned adapters per domain under ``<state_dir>/adapters/<domain>/vNNNN/`` (PEFT
adapter, its GGUF export, manifest.json); ``promoted.json`` names the one served.
Promotion is gated on the validation metric (lower is better)."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


class PromotionRefused(RuntimeError):
    """The adapter does not beat the promoted one (or the base model)."""


@dataclass
class Adapter:
    version: str
    path: Path
    manifest: dict

    @property
    def peft_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def gguf(self) -> Path:
        return self.path / "adapter.gguf"

    def metric(self, name: str) -> float:
        return float(self.manifest["metrics"][name])


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)  # atomic: a reader never sees half a file


class AdapterRegistry:
    def __init__(self, state_dir: Path, domain: str):
        self.root = Path(state_dir) / "adapters" / domain
        self.domain = domain

    def versions(self) -> list[Adapter]:
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.glob("v[0-9]*") if (p / "manifest.json").is_file()]
        return [Adapter(p.name, p, json.loads((p / "manifest.json").read_text())) for p in sorted(found)]

    def get(self, version: str) -> Adapter:
        for a in self.versions():
            if a.version == version:
                return a
        known = ", ".join(a.version for a in self.versions()) or "none"
        raise KeyError(f"{self.domain} has no adapter {version!r} (known: {known})")

    def note_erasure(self, version: str, examples: int) -> None:
        """Say in an adapter's data card that examples it was trained on have since been
        erased at their owner's request (the weights cannot forget them; retrain to)."""
        adapter = self.get(version)
        card = adapter.manifest.setdefault("data_card", {})
        card.setdefault("erased_after_training", []).append(
            {"examples": examples, "erased_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        _write_json(adapter.path / "manifest.json", adapter.manifest)

    def promoted_version(self) -> str | None:
        """Read on every turn by a serving process: one small file, written atomically."""
        pointer = self.root / "promoted.json"
        if not pointer.is_file():
            return None
        return json.loads(pointer.read_text())["version"]

    def promoted(self) -> Adapter | None:
        version = self.promoted_version()
        return self.get(version) if version else None

    def register(self, adapter_dir: Path, manifest: dict, gguf: Path | None = None) -> Adapter:
        self.root.mkdir(parents=True, exist_ok=True)
        n = len(self.versions()) + 1
        while True:  # mkdir is the lock: two registering runs never share a version
            target = self.root / f"v{n:04d}"
            try:
                target.mkdir()
                break
            except FileExistsError:
                n += 1
        shutil.copytree(adapter_dir, target / "adapter")
        if gguf is not None:
            shutil.copy2(gguf, target / "adapter.gguf")
        manifest = {**manifest, "version": target.name, "domain": self.domain,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write_json(target / "manifest.json", manifest)
        return Adapter(target.name, target, manifest)

    def promote(self, version: str, metric: str = "val_loss") -> str:
        """Promote if it beats the promoted adapter, or the base model when none is."""
        cand = self.get(version)
        current = self.promoted()
        if current is not None and current.version == version:
            return f"{version} is already promoted"
        bar, against = ((current.metric(metric), current.version) if current is not None
                        else (cand.metric("base_" + metric), "the base model"))
        value = cand.metric(metric)
        if not value < bar:
            raise PromotionRefused(f"{version} not promoted: {metric} {value:.4f} does not beat {against} ({bar:.4f})")
        _write_json(self.root / "promoted.json", {"version": version, "promoted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                                   "replaces": current.version if current else None})
        return f"{version} promoted: {metric} {value:.4f} < {bar:.4f} ({against})"

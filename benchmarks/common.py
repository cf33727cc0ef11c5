"""Helpers shared by the benchmark scripts: real text from ../shared/data, cached
embeddings, percentiles."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ASSISTANTS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "var" / "bench"


def need_data() -> None:
    if not DATA.is_dir():
        raise SystemExit(f"benchmark data not found at {DATA} (set ASSISTANTS_SHARED_DATA)")


def words_chunks(text: str, size: int = 100) -> list[str]:
    words = text.split()
    return [" ".join(words[i:i + size]) for i in range(0, len(words), size) if len(words[i:i + size]) >= 20]


def medquad(limit: int | None = None) -> list[dict]:
    with gzip.open(DATA / "medical" / "medquad.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    return rows[:limit] if limit else rows


def real_chunks(n: int) -> list[tuple[str, str]]:
    """(title, ~100-word chunk): CUAD contracts for 60%, MedQuAD answers for the rest."""
    out: list[tuple[str, str]] = []
    for path in sorted((DATA / "legal" / "cuad" / "contracts").glob("*.txt")):
        for c in words_chunks(path.read_text(errors="replace")):
            out.append((path.stem[:80], c))
            if len(out) >= int(n * 0.6):
                break
        if len(out) >= int(n * 0.6):
            break
    for rec in medquad():
        for c in words_chunks(rec["answer"]):
            out.append((rec["question"][:80], c))
        if len(out) >= n:
            break
    return out[:n]


def real_queries(n: int, seed: int = 7) -> list[str]:
    """Real questions: MedQuAD, the LegalBench CUAD task questions, FiQA."""
    rnd = random.Random(seed)
    med = rnd.sample([r["question"] for r in medquad()], int(n * 0.6))
    legal = set()
    for path in sorted((DATA / "legal" / "legalbench_dev").glob("cuad_*.jsonl")):
        with path.open() as f:
            legal.add(json.loads(f.readline())["question"])
    with (DATA / "finance" / "fiqa_dev.jsonl").open() as f:
        fiqa = [json.loads(line)["question"] for line in f]
    rest = sorted(legal) + rnd.sample(fiqa, n)
    return (med + rest)[:n]


def cached_embeddings(embedding, texts: list[str], name: str) -> np.ndarray:
    """Embeddings are the slow part (~10-30 texts/s on 2 cores); cache them by content."""
    key = hashlib.sha256(("\x00".join(texts) + embedding.model_name).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    from tqdm import tqdm

    CACHE.mkdir(parents=True, exist_ok=True)
    parts = []
    step = embedding.embed_batch_size * 8
    for i in tqdm(range(0, len(texts), step), desc=f"embed {name}", unit="batch"):
        parts.append(embedding.embed(texts[i:i + step]))
    vecs = np.vstack(parts).astype(np.float32)
    np.save(path, vecs)
    return vecs


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))

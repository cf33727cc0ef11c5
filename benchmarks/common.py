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
    """(title, ~100-word chunk): CUAD contracts for 60%, MedQuAD answers for the rest.
    Repeated passages (boilerplate, answers shared by several questions) are kept once,
    as an ingestion that deduplicates would; near-identical vectors would otherwise turn
    recall@10 into a measure of tie-breaking."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def take(title: str, chunk: str) -> None:
        if chunk not in seen:
            seen.add(chunk)
            out.append((title, chunk))

    for path in sorted((DATA / "legal" / "cuad" / "contracts").glob("*.txt")):
        for c in words_chunks(path.read_text(errors="replace")):
            take(path.stem[:80], c)
        if len(out) >= int(n * 0.6):
            break
    del out[int(n * 0.6):]
    for rec in medquad():
        for c in words_chunks(rec["answer"]):
            take(rec["question"][:80], c)
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
    """Embeddings are the slow part (~10-30 texts/s on 2 cores): cache them per text, so
    changing the corpus only embeds what is new."""
    tag = hashlib.sha256(embedding.model_name.encode()).hexdigest()[:8]
    vec_path, txt_path = CACHE / f"{name}-{tag}.npy", CACHE / f"{name}-{tag}.json"
    known: dict[str, np.ndarray] = {}
    if vec_path.exists() and txt_path.exists():
        old_vecs = np.load(vec_path)
        known = dict(zip(json.loads(txt_path.read_text()), old_vecs))
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        from tqdm import tqdm

        step = embedding.embed_batch_size * 8
        for i in tqdm(range(0, len(missing), step), desc=f"embed {name}", unit="batch"):
            part = missing[i:i + step]
            known.update(zip(part, embedding.embed(part).astype(np.float32)))
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(vec_path, np.vstack(list(known.values())))
        txt_path.write_text(json.dumps(list(known)))
    return np.vstack([known[t] for t in texts]).astype(np.float32)


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values), p))

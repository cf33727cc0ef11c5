"""Dataset importers: a domain's importer (an ``importer`` plugin, shared/plugins.py) turns a
dataset file into records (``{"id", "title", "text", ...metadata}``); here they are written, atomically, to a JSONL
file under the state dir and ingested like any other file, so imports get the same
incremental hashing, pruning and resume-after-kill as everything else."""
from __future__ import annotations

import csv
import gzip
import json
import os
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator

Record = dict
Importer = Callable[[Path], Iterable[Record]]


class DatasetError(ValueError):
    """The importer or its input is unusable; the message says which."""


def read_records(path: Path) -> Iterator[dict]:
    """Records of a .jsonl, .json (list) or .csv (a dict per row, by its header) file,
    each optionally gzipped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    if path.name.lower().removesuffix(".gz").endswith(".csv"):
        # utf-8-sig: spreadsheets often start a CSV with a byte-order mark.
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            yield from csv.DictReader(f)
        return
    with opener(path, "rt", encoding="utf-8") as f:
        if path.name.endswith((".json", ".json.gz")):
            data = json.load(f)
            yield from (data if isinstance(data, list) else [data])
            return
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path.name}: line {n} is not valid JSON ({e.msg})") from None


def convert(importer: Importer, source: Path, target: Path, limit: int | None = None) -> int:
    """Write the importer's records for ``source`` to ``target`` (JSONL); returns the count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    n = 0
    with open(tmp, "w", encoding="utf-8") as out:
        for rec in islice(importer(Path(source)), limit):
            if not rec.get("id") or not str(rec.get("text", "")).strip():
                continue
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(target)
    return n

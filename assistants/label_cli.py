"""``assistants label DOMAIN POOL``: programmatic labeling of a pool of unlabeled texts with
the domain's ``labeling.yaml`` (shared/labeling/pipeline.py), writing a labeled dataset, a
training JSONL that a train.yaml data source reads, and a label card."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import command
from .domains import domain_dir, settings_for


def cmd_label(args) -> int:
    from shared.ingest.importers import DatasetError
    from shared.labeling import LabelingError
    from shared.labeling import pipeline

    spec_path = domain_dir(args.domain) / "labeling.yaml"
    if not spec_path.is_file():
        print(f"error: {args.domain} has no labeling.yaml ({spec_path})", file=sys.stderr)
        return 2
    settings = settings_for(args.domain)  # imports the plugins labeling.yaml names
    out = args.out or settings.state_dir / "labeling" / args.domain
    try:
        spec = pipeline.read_spec(spec_path)
        pool = pipeline.read_pool(args.pool, spec, args.limit)
        gold = pipeline.read_gold(args.gold, spec, len(pool), args.gold_fraction) if args.gold else []
        result = pipeline.label(spec, pool, gold, min_confidence=args.min_confidence, max_per_label=args.max_per_label,
                                progress=not args.quiet)
    except (DatasetError, LabelingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = pipeline.write(result, out, f"{args.domain}, {Path(args.pool).name}")
    print(f"[{args.domain}] {pipeline.summary(result.card)}")
    print(f"wrote {', '.join(p.name for p in paths.values())} to {out}")
    return 0


def register(sub) -> None:
    """Add ``label`` to the top-level subparsers of ``assistants``."""
    lb = command(sub, "label", cmd_label, "label a pool of unlabeled texts with the domain's labeling functions")
    lb.add_argument("pool", type=Path, help="JSONL/JSON/CSV/TXT of texts, or a folder the domain's pool reader reads")
    lb.add_argument("--gold", type=Path, help="JSONL of gold labels (the text field and `label`), at most --gold-fraction of the pool")
    lb.add_argument("--gold-fraction", type=float, default=0.01, help="cap on gold labels as a share of the pool (default 0.01)")
    lb.add_argument("--out", type=Path, help="output folder (default: STATE_DIR/labeling/DOMAIN)")
    lb.add_argument("--min-confidence", type=float, default=0.6, help="keep items whose label posterior is at least this")
    lb.add_argument("--max-per-label", type=int, help="keep at most N weak labels of each label, the most confident "
                                                      "(balances a skewed pool; gold is always kept)")
    lb.add_argument("--limit", type=int, help="label only the first N texts of the pool")
    lb.add_argument("--quiet", action="store_true", help="no progress bar")

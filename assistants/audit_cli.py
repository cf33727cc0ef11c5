"""``assistants audit export|erase PRINCIPAL``: a principal's stored records as JSON, or
their erasure (see shared/audit.py for what is and is not covered)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import command, runtime
from .domains import DOMAINS


def _principal(value: str) -> str:
    # Refused while parsing (exit 2), before shared.audit would raise ValueError mid-command.
    if not value.strip():
        raise argparse.ArgumentTypeError("a principal is required")
    return value


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items())


def cmd_export(args) -> int:
    from shared import audit

    # Every domain shares one database; the first domain's settings locate it (as `users` does).
    with runtime(DOMAINS[0]) as rt:
        record = audit.export(rt.db, args.principal)
    text = json.dumps(record, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    messages = [m for c in record["conversations"] for m in c["messages"]]
    print(f"exported {args.principal}: " + _counts({
        "conversations": len(record["conversations"]),
        "messages": len(messages),
        "sources": sum(len(m["sources"]) for m in messages),
        "feedback": sum(m["feedback"] is not None for m in messages),
        "documents": len(record["documents"]),
        "account": int(record["account"] is not None),
    }), file=sys.stderr)
    return 0


def cmd_erase(args) -> int:
    from shared import audit

    if not args.yes:
        print(f"refused: erasing {args.principal!r} cannot be undone; add --yes (export first)", file=sys.stderr)
        return 2
    with runtime(DOMAINS[0]) as rt:
        try:
            counts = audit.erase(rt.db, args.principal, documents=not args.keep_documents, state_dir=rt.settings.state_dir)
        except audit.ErasureRefused as e:
            print(f"refused: {e}", file=sys.stderr)
            return 1
    print(f"erased {args.principal}: {_counts(counts)}")
    return 0


def register(sub) -> None:
    """Add ``audit`` to the top-level subparsers of ``assistants``."""
    au = sub.add_parser("audit", help="export or erase everything stored about one principal")
    actions = au.add_subparsers(dest="action", required=True)
    ex = command(actions, "export", cmd_export, "the principal's records as JSON", domain=False)
    ex.add_argument("principal", type=_principal)
    ex.add_argument("--out", type=Path, help="write the JSON here instead of standard output")
    er = command(actions, "erase", cmd_erase, "delete the principal's records (right to erasure)", domain=False)
    er.add_argument("principal", type=_principal)
    er.add_argument("--keep-documents", action="store_true", help="keep their private documents")
    er.add_argument("--yes", action="store_true", help="confirm: the erasure cannot be undone")

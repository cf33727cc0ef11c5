"""``assistants analyse|ingest|import|search``: a domain's documents. One uploaded privately
and reported on clause by clause, files ingested incrementally, a dataset converted by the
domain's importer and ingested, and retrieval from the command line."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from .common import command, failures, runtime
from .domains import settings_for


def _report(domain: str, summary) -> int:
    """Print an ingestion summary (failures by name on stderr); returns the failure count."""
    failed = failures(summary)
    print(f"[{domain}] {summary.line()}")
    return failed


def cmd_ingest(args) -> int:
    with runtime(args.domain) as rt:
        summary = rt.ingestor(principal=args.principal).run(args.paths, prune=args.prune, progress=not args.quiet)
    return 1 if (_report(args.domain, summary) and args.strict) else 0


def cmd_analyse(args) -> int:
    from shared.analysis.upload import UploadError

    with runtime(args.domain) as rt:
        service = rt.document_service()
        if service is None:
            print(f"error: {args.domain} has no analysis.checklist; it does not analyse documents", file=sys.stderr)
            return 2
        service.analyzer.show_bar = not args.quiet
        try:
            analysis = service.analyse_upload(args.file, args.principal)
        except UploadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        files = service.write_files(analysis, args.out)
        print(analysis.markdown)
        print("report written to " + ", ".join(map(str, files)), file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from shared.ingest.importers import convert
    from shared.plugins import IMPORTER, lookup

    s = settings_for(args.domain)
    spec = s.domain.importers.get(args.name)
    if spec is None:
        known = ", ".join(sorted(s.domain.importers)) or "none"
        print(f"error: {args.domain} has no importer {args.name!r} (known: {known})", file=sys.stderr)
        return 2
    target = s.state_dir / "imports" / args.domain / f"{args.name}.jsonl"
    n = convert(lookup(IMPORTER, spec), args.path, target, args.limit)
    print(f"[{args.domain}] {args.name}: {n} records from {args.path}")
    with runtime(args.domain) as rt:
        return 1 if _report(args.domain, rt.ingestor().run([target], prune=True, progress=not args.quiet)) else 0


def cmd_search(args) -> int:
    with runtime(args.domain) as rt:
        retriever = rt.retriever(principal=args.principal, as_of=args.as_of, mode=args.mode, top_k=args.k)
        for i, hit in enumerate(retriever.retrieve(args.query), start=1):
            m = hit.node.metadata
            span = f"{m.get('char_start')}-{m.get('char_end')}"
            print(f"[{i}] {hit.score:.4f}  {m.get('title')}  ({m.get('doc_id')} chars {span})")
            print("    " + hit.node.get_content()[:300].replace("\n", " "))
    return 0


def register(sub) -> None:
    """Add ``analyse``, ``ingest``, ``import`` and ``search`` to the top-level subparsers of ``assistants``."""
    an = command(sub, "analyse", cmd_analyse, "upload a document privately and write its clause report", quiet=True)
    an.add_argument("file", type=Path, help="the document (PDF, DOCX or TXT)")
    an.add_argument("--principal", default="cli", help="owner of the uploaded document (private to that principal)")
    an.add_argument("--out", type=Path, default=Path("."), help="folder for the Markdown and PDF report")

    ing = command(sub, "ingest", cmd_ingest, "ingest files or folders into a domain's collection", quiet=True)
    ing.add_argument("paths", nargs="+", metavar="PATH")
    ing.add_argument("--prune", action="store_true", help="remove documents whose files are gone (within PATHs)")
    ing.add_argument("--principal", help="owner of the ingested documents (private to that principal)")
    ing.add_argument("--strict", action="store_true", help="exit 1 if any file failed")

    im = command(sub, "import", cmd_import, "convert a dataset with one of the domain's importers, then ingest it",
                 quiet=True)
    im.add_argument("name", help="importer name (the domain config's domain.importers)")
    im.add_argument("path", type=Path, help="the dataset file")
    im.add_argument("--limit", type=int, help="import only the first N records")

    se = command(sub, "search", cmd_search, "retrieve passages for a query")
    se.add_argument("query")
    se.add_argument("--mode", choices=["vector", "text", "hybrid"])
    se.add_argument("-k", type=int, default=None)
    se.add_argument("--as-of", type=date.fromisoformat, help="only what was in force on this date (YYYY-MM-DD)")
    se.add_argument("--principal")

"""``assistants``: the one command line of the suite.

  assistants up                      start the database, ingest every sample corpus, serve the three UIs,
                                     train missing adapters in the background (--verbose, --port-base)
  assistants jobs [list|add DOMAIN|cancel ID]
                                     background training jobs (queued, running with its step, done, failed)
  assistants serve DOMAIN            serve one assistant's chat UI (--port, --host)
  assistants ask DOMAIN QUESTION     one grounded answer on the command line
  assistants analyse DOMAIN FILE     upload a document privately and write its clause report (--out)
  assistants import DOMAIN NAME PATH convert a dataset with the domain's importer, then ingest it
  assistants db start|stop|status    manage the embedded Postgres (ignored with DATABASE_URL)
  assistants engine status|stop      the managed llama.cpp engine serving the local model
  assistants vllm start|status|stop  vLLM serving the model and every promoted adapter (profile vllm;
                                     its env: scripts/vllm.sh env; --host, --port, --env)
  assistants ingest DOMAIN PATH...   incremental ingestion (--prune, --principal)
  assistants search DOMAIN QUERY     retrieval from the command line (--mode, -k, --as-of)
  assistants config DOMAIN           print the validated settings
  assistants eval conversations DOMAIN [SCRIPT...] [--url URL]
                                     run scripted conversations in-process or against a deployment
  assistants eval bench DOMAIN --out DIR [--modes ...] [--limit N] [--data FILE] [--ci]
                                     benchmarks in base/RAG/fine-tuned/hybrid modes: JSON, tables, plots
  assistants eval history DOMAIN     earlier benchmark runs stored in Postgres
  assistants users add|list|roles|disable [--role reviewer[:DOMAIN]]
                                     login accounts for the chat UIs (salted scrypt hashes)
  assistants audit export PRINCIPAL [--out FILE]
                                     everything stored about one principal, as JSON
  assistants audit erase PRINCIPAL --yes [--keep-documents]
                                     delete it (right to erasure); others' rows untouched
  assistants review DOMAIN [--accept ID [--answer T] | --reject ID]
                                     the queue of training examples proposed from the chat UIs
  assistants keys create PRINCIPAL [--domain D] [--expires DAYS] | list | revoke KEY
                                     keys of the OpenAI-compatible API (/v1), printed once, stored hashed
  assistants label DOMAIN POOL [--gold FILE] [--out DIR] [--min-confidence X] [--limit N]
                                     label a pool of texts with the domain's labeling.yaml rules
  assistants DOMAIN COMMAND ...      a domain's own data commands (finance: update-market,
                                     generate-market, import-books, import-users)
"""
from __future__ import annotations

import argparse
import os
import sys

from shared import logs
from shared.db import DatabaseUnavailable
from shared.generation import GenerationError
from shared.ingest.importers import DatasetError
from shared.settings import ConfigError

from . import admin_cli, audit_cli, documents_cli, eval_cli, jobs_cli, keys_cli, label_cli, review_cli, serve_cli, train_cli

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assistants", description="Domain assistants: RAG vs fine-tuning, per domain.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-content", action="store_true",
                   help="debug only: let logs carry message text and login names (never on by default)")
    sub = p.add_subparsers(dest="command", required=True)
    # One module per command group; `--help` lists the commands group by group.
    for module in (serve_cli, documents_cli, train_cli, eval_cli, admin_cli,
                   audit_cli, keys_cli, review_cli, jobs_cli, label_cli):
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except ConfigError as e:  # domain commands are read from the configs while parsing
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.log_content:
        os.environ[logs.CONTENT_ENV] = "1"  # child processes (training) log the same way
    logs.configure(args.verbose)
    try:
        return args.func(args)
    except (ConfigError, DatabaseUnavailable, FileNotFoundError, DatasetError, GenerationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

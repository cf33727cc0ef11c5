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
import contextlib
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

import yaml

from shared import logs
from shared.db import DatabaseUnavailable
from shared.generation import GenerationError
from shared.finetune.config import load_finetune_config
from shared.ingest.importers import DatasetError, resolve
from shared.settings import ConfigError

from . import audit_cli, jobs_cli, keys_cli, label_cli, review_cli
from .domains import DOMAINS, domain_dir, samples_dir, settings_for


def _runtime(domain: str, db=None):
    from shared.runtime import Runtime

    return Runtime(settings_for(domain), db=db)


def _failures(summary) -> int:
    """Print the files an ingestion could not use, by name, on stderr; returns their count."""
    for name, reason in summary.failed:
        print(f"FAILED {name}: {reason}", file=sys.stderr)
    return len(summary.failed)


def _report(domain: str, summary) -> int:
    """Print an ingestion summary (failures by name on stderr); returns the failure count."""
    failed = _failures(summary)
    print(f"[{domain}] {summary.line()}")
    return failed


def cmd_ingest(args) -> int:
    with _runtime(args.domain) as rt:
        summary = rt.ingestor(principal=args.principal).run(args.paths, prune=args.prune, progress=not args.quiet)
    return 1 if (_report(args.domain, summary) and args.strict) else 0


def _stage(text: str, t0: float) -> None:
    """One line per stage of `up`, with how long it took."""
    print(f"{text} ({time.perf_counter() - t0:.1f} s)", flush=True)


def cmd_up(args) -> int:
    """The main job: the database, every domain's samples ingested, the three chat UIs
    served at once (base models where no adapter is promoted yet), and the missing adapters
    trained in the background, switched in live when promoted."""
    state = settings_for(DOMAINS[0]).state_dir
    log_file = state / "logs" / "up.log"
    if not args.verbose:
        logs.to_file(log_file)
        print(f"assistants up: details in {log_file} (--verbose shows them here)", flush=True)
    t0 = time.perf_counter()
    first = _runtime(DOMAINS[0])
    runtimes = [first] + [_runtime(d, db=first.db) for d in DOMAINS[1:]]
    where = f"embedded Postgres in {first.db.data_dir}" if first.db.embedded else "DATABASE_URL"
    _stage(f"database ready: {where}", t0)
    failed, runner = 0, None
    bars = args.verbose and not args.quiet
    try:
        if not args.no_serve:
            t0 = time.perf_counter()
            for rt in runtimes:
                rt.generator  # before the embedding model: unsloth must be imported before transformers
            _stage(f"model loaded: {runtimes[0].generator.describe()['model']}", t0)
        for domain, rt in zip(DOMAINS, runtimes):
            t0 = time.perf_counter()
            summary = rt.ingestor().run([samples_dir(domain)], prune=True, progress=bars)
            failed += _failures(summary)
            done = (f"[{domain}] corpus ingested: {summary.new} new, {summary.changed} changed, "
                    f"{summary.unchanged} unchanged")
            if rt.settings.domain.setup:
                done += f"; {resolve(rt.settings.domain.setup)(rt, progress=bars)}"
            _stage(done, t0)
        if not args.no_train:
            from .jobs_cli import job_queue, queue_first_adapters

            for line in queue_first_adapters(job_queue(first)):
                print(line)
        if args.no_serve:
            return 1 if failed else 0
        servers = _servers(runtimes, port_base=args.port_base)
        if not args.no_train:
            from .jobs_cli import ProgressLine, start_runner

            runner = start_runner(first, state / "logs" / "training.log",
                                  ProgressLine() if not args.quiet else (lambda job: None))
            print(f"training jobs run in the background, one at a time (`assistants jobs`; output in "
                  f"{state / 'logs' / 'training.log'}); Ctrl-C stops everything, an unfinished job resumes "
                  "at the next up",
                  flush=True)
        from shared.ui import serve

        serve(servers)
    finally:
        if runner is not None:
            runner.stop()
        first.close()
    return 1 if failed else 0


def _servers(runtimes, host: str | None = None, port: int | None = None, port_base: int | None = None) -> list:
    """(app, host, port) per runtime, each announced with its URL and who can reach it."""
    from shared.ui import create_server

    apps = []
    for i, rt in enumerate(runtimes):
        ui = rt.settings.ui
        h, p = host or ui.host, port or (port_base + i if port_base else ui.port)
        t0 = time.perf_counter()
        apps.append((create_server(rt.chat_engine()), h, p))
        sign_in = f"; sign in: {ui.login_hint}" if ui.login and ui.login_hint else ""
        _stage(f"[{rt.settings.domain.name}] {rt.settings.domain.title}: http://{h}:{p}/ "
               f"({_reach(h, ui.login)}{sign_in})", t0)
    return apps


def _reach(host: str, login: bool) -> str:
    """Who can open the UI: said at start-up, since exposing it is a decision to make knowingly.
    There is no public share link (Gradio's --share is never used)."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return "this machine only; --host 0.0.0.0 or ui.host to expose it"
    return "exposed on the network" + ("" if login else " WITHOUT a login: anyone who reaches it can use it")


def cmd_serve(args) -> int:
    with _runtime(args.domain) as rt:
        rt.generator  # load the model before serving (and before the embedding model, for unsloth)
        from shared.ui import serve

        serve(_servers([rt], args.host, args.port))
    return 0


def cmd_ask(args) -> int:
    with _runtime(args.domain) as rt:
        engine = rt.chat_engine()
        turn, streamed = None, ""
        for event in engine.stream(args.question, principal=args.principal, as_of=args.as_of):
            if event.kind == "token":
                streamed += event.text
                print(event.text, end="", flush=True)
            elif event.kind == "done":
                turn = event.turn
        print()
        if turn.answer.strip() != streamed.strip():  # citations added, or a checked figure replaced
            print(f"\nfinal answer: {turn.answer}")
        for p in turn.passages:
            if p.in_prompt:
                print(f"[{p.n}] {p.title} ({p.doc_id}{', as of ' + p.as_of if p.as_of else ''})")
        if turn.disclaimer:
            print(f"\n{turn.disclaimer}")
    return 0


def cmd_analyse(args) -> int:
    from shared.analysis import Checklist
    from shared.analysis.service import DocumentService
    from shared.analysis.upload import UploadError

    with _runtime(args.domain) as rt:
        checklist = Checklist.for_settings(rt.settings)
        if checklist is None:
            print(f"error: {args.domain} has no analysis.checklist; it does not analyse documents", file=sys.stderr)
            return 2
        service = DocumentService(rt, checklist)
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
    from shared.ingest.importers import convert, resolve

    s = settings_for(args.domain)
    spec = s.domain.importers.get(args.name)
    if spec is None:
        known = ", ".join(sorted(s.domain.importers)) or "none"
        print(f"error: {args.domain} has no importer {args.name!r} (known: {known})", file=sys.stderr)
        return 2
    target = s.state_dir / "imports" / args.domain / f"{args.name}.jsonl"
    n = convert(resolve(spec), args.path, target, args.limit)
    print(f"[{args.domain}] {args.name}: {n} records from {args.path}")
    with _runtime(args.domain) as rt:
        return 1 if _report(args.domain, rt.ingestor().run([target], prune=True, progress=not args.quiet)) else 0


def cmd_train(args) -> int:
    from shared.finetune.jobs import JobQueue, StepReporter
    from shared.finetune.run import run_training

    overrides = {"train": {"max_steps": args.max_steps}} if args.max_steps else None
    with contextlib.ExitStack() as stack:
        # A background job (`up` runs it): its step and estimate go to Postgres for the UIs.
        queue = JobQueue(stack.enter_context(_runtime(args.domain)).db) if args.job else None
        adapter = run_training(settings_for(args.domain), domain_dir(args.domain), resume=args.resume,
                               overrides=overrides, engine=args.engine, progress=not args.quiet,
                               config_path=args.config, on_step=StepReporter(queue, args.job) if queue else None)
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


def cmd_search(args) -> int:
    with _runtime(args.domain) as rt:
        retriever = rt.retriever(principal=args.principal, as_of=args.as_of, mode=args.mode, top_k=args.k)
        for i, hit in enumerate(retriever.retrieve(args.query), start=1):
            m = hit.node.metadata
            span = f"{m.get('char_start')}-{m.get('char_end')}"
            print(f"[{i}] {hit.score:.4f}  {m.get('title')}  ({m.get('doc_id')} chars {span})")
            print("    " + hit.node.get_content()[:300].replace("\n", " "))
    return 0


def cmd_eval_conversations(args) -> int:
    from shared.evaluation.clients import LocalClient, RemoteClient
    from shared.evaluation.conversations import bare_speed, context_for, run_scripts, summary
    from shared.evaluation.scripts import load_scripts

    s = settings_for(args.domain)
    root = domain_dir(args.domain)
    scripts = load_scripts(args.scripts or [root / s.evaluation.scripts])
    timed = any(t.expect.latency_ratio for sc in scripts for t in sc.turns)
    with _runtime(args.domain) as rt:
        # The bare backend is timed here, also for --url: run this on the serving machine for a fair ratio.
        bare = bare_speed(rt.generator, s.evaluation.latency_probe) if timed else None
        if timed and not args.url:
            rt.embedding.embed([s.evaluation.latency_probe])  # loaded before the first timed turn, not during it
        auth = tuple(args.auth.split(":", 1)) if args.auth else None
        client_for = (lambda _: RemoteClient(args.url, auth)) if args.url else (lambda sc: LocalClient(rt, sc.who))
        results = run_scripts(scripts, client_for, context_for(s, bare), root, progress=not args.quiet)
    lines, passed, failed = summary(results)
    for line in lines:
        print(line)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_eval_bench(args) -> int:
    from shared.evaluation import history, report
    from shared.evaluation.bench import BenchRunner, below_thresholds

    s = settings_for(args.domain)
    benchmarks = s.evaluation.benchmarks
    if args.benchmark:
        unknown = [b for b in args.benchmark if b not in benchmarks]
        if unknown:
            print(f"error: {args.domain} has no benchmark {unknown[0]!r} (known: {', '.join(benchmarks) or 'none'})",
                  file=sys.stderr)
            return 2
        benchmarks = {b: benchmarks[b] for b in args.benchmark}
    if args.data and len(benchmarks) != 1:
        print(f"error: --data needs one --benchmark (of: {', '.join(benchmarks)})", file=sys.stderr)
        return 2
    if not benchmarks:
        print(f"error: {args.domain} declares no benchmarks (evaluation.benchmarks)", file=sys.stderr)
        return 2
    with _runtime(args.domain) as rt:
        run = BenchRunner(rt, progress=not args.quiet).run(benchmarks, args.modes, args.limit, args.data, ci=args.ci)
        run_id = history.save(rt.db, run)
    files = report.write(run, args.out)
    print("\n".join(report.table(run)))
    print(f"run {run_id} stored; report: " + ", ".join(str(f) for f in files[:4]) + f" and {len(files) - 4} plot(s)")
    if args.ci:
        for name, cfg in run.config["benchmarks"].items():
            if cfg["source"] != "shared":
                print(f"note: {name} ran on {cfg['data']}, not the shared data its thresholds were recorded on")
        problems = below_thresholds(run, benchmarks)
        for p in problems:
            print(f"BELOW THRESHOLD {p}")
        return 1 if problems else 0
    return 0


def cmd_eval_history(args) -> int:
    from shared.evaluation import history

    with _runtime(args.domain) as rt:
        runs = history.recent(rt.db, args.domain, args.n)
    if not runs:
        print(f"no benchmark runs stored for {args.domain}: assistants eval bench {args.domain} --out DIR")
    for run_id, finished, config, scores in runs:
        print(f"{finished:%Y-%m-%d %H:%M}  {run_id}  {'ci ' if config.get('ci') else ''}limit {config.get('limit')}")
        for bench, modes in scores.items():
            cells = "  ".join(f"{m} " + " ".join(f"{k}={v}" for k, v in sc.items() if k in ("accuracy", "em", "f1", "mrr"))
                              for m, sc in modes.items())
            print(f"    {bench:12s} {cells}")
    return 0


def cmd_db(args) -> int:
    from shared.db import embedded

    s = settings_for(DOMAINS[0])
    if s.database.url:
        print("DATABASE_URL is set: the embedded server is not used")
        return 0
    data_dir = s.state_dir / "pg"
    if args.action == "start":
        _runtime(DOMAINS[0]).db.close()  # opening starts, migrates and self-checks it
        print(f"embedded Postgres running in {data_dir.resolve()}")
    elif args.action == "stop":
        print("stopped" if embedded.stop(data_dir) else "not running")
    else:
        print(f"embedded Postgres in {data_dir.resolve()}: {'running' if embedded.is_running(data_dir) else 'stopped'}")
    return 0


def cmd_users(args) -> int:
    import getpass

    from shared.auth import UserError, Users

    with _runtime(DOMAINS[0]) as rt:
        users = Users(rt.db)
        if args.action == "list":
            for u in users.list():
                print(f"{u.username:20s} {u.display_name or '':30s} {','.join(u.roles):20s} {'disabled' if u.disabled else ''}")
            return 0
        if not args.username:
            print("error: a USERNAME is required", file=sys.stderr)
            return 2
        if args.action == "disable":
            found = users.disable(args.username)
            print(f"disabled {args.username}" if found else f"no user {args.username}")
            return 0 if found else 1
        try:
            if args.action == "roles":
                found = users.set_roles(args.username, args.role or [])
                print(f"{args.username}: roles {', '.join(args.role or []) or 'none'}" if found else f"no user {args.username}")
                return 0 if found else 1
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass(f"password for {args.username}: ")
            users.add(args.username, password, args.display_name, roles=args.role)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"user {args.username} saved (scrypt hash); the login name is the principal the database sees")
    return 0


def cmd_domain(args) -> int:
    """A domain's own command (``domain.commands``)."""
    if not getattr(args, "needs_runtime", True):
        print(args.run(None, args))
        return 0
    with _runtime(args.domain) as rt:
        print(f"[{args.domain}] {args.run(rt, args)}")
    return 0


def cmd_config(args) -> int:
    print(yaml.safe_dump(settings_for(args.domain).model_dump(mode="json"), sort_keys=False), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assistants", description="Domain assistants: RAG vs fine-tuning, per domain.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-content", action="store_true",
                   help="debug only: let logs carry message text and login names (never on by default)")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, func, help: str, domain: bool = True, quiet: bool = False) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help)
        c.set_defaults(func=func)
        if domain:
            c.add_argument("domain", choices=DOMAINS)
        if quiet:
            c.add_argument("--quiet", action="store_true", help="no progress bars")
        return c

    up = command("up", cmd_up, "start the database, ingest every domain's samples, serve the UIs, train missing "
                 "adapters in the background", domain=False, quiet=True)
    up.add_argument("--no-serve", action="store_true", help="prepare only, do not serve the UIs")
    up.add_argument("--no-train", action="store_true", help="queue and run no training jobs (serve what is promoted)")
    up.add_argument("--port-base", type=int, help="serve the domains on PORT, PORT+1, ... (default: each ui.port)")
    # Also after `up` (SUPPRESS: absent, it leaves `assistants --verbose up` as it was).
    up.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help="library warnings and progress bars on the terminal instead of the log file")

    sv = command("serve", cmd_serve, "serve one assistant's chat UI")
    sv.add_argument("--host", help="interface (default: ui.host)")
    sv.add_argument("--port", type=int, help="port (default: the domain's ui.port)")

    ak = command("ask", cmd_ask, "ask one question on the command line")
    ak.add_argument("question")
    ak.add_argument("--principal", default="cli", help="whose private documents count, and who owns the record")
    ak.add_argument("--as-of", type=date.fromisoformat, help="answer from what was in force on this date")

    an = command("analyse", cmd_analyse, "upload a document privately and write its clause report", quiet=True)
    an.add_argument("file", type=Path, help="the document (PDF, DOCX or TXT)")
    an.add_argument("--principal", default="cli", help="owner of the uploaded document (private to that principal)")
    an.add_argument("--out", type=Path, default=Path("."), help="folder for the Markdown and PDF report")

    command("db", cmd_db, "manage the embedded Postgres", domain=False).add_argument("action", choices=["start", "stop", "status"])

    ing = command("ingest", cmd_ingest, "ingest files or folders into a domain's collection", quiet=True)
    ing.add_argument("paths", nargs="+", metavar="PATH")
    ing.add_argument("--prune", action="store_true", help="remove documents whose files are gone (within PATHs)")
    ing.add_argument("--principal", help="owner of the ingested documents (private to that principal)")
    ing.add_argument("--strict", action="store_true", help="exit 1 if any file failed")

    im = command("import", cmd_import, "convert a dataset with one of the domain's importers, then ingest it", quiet=True)
    im.add_argument("name", help="importer name (the domain config's domain.importers)")
    im.add_argument("path", type=Path, help="the dataset file")
    im.add_argument("--limit", type=int, help="import only the first N records")

    se = command("search", cmd_search, "retrieve passages for a query")
    se.add_argument("query")
    se.add_argument("--mode", choices=["vector", "text", "hybrid"])
    se.add_argument("-k", type=int, default=None)
    se.add_argument("--as-of", type=date.fromisoformat, help="only what was in force on this date (YYYY-MM-DD)")
    se.add_argument("--principal")

    command("config", cmd_config, "print a domain's validated settings")

    tr = command("train", cmd_train, "fine-tune the domain's adapter (train.yaml) and register it", quiet=True)
    tr.add_argument("--resume", action="store_true", help="continue the newest unfinished run from its last checkpoint")
    tr.add_argument("--max-steps", type=int, help="override train.max_steps")
    tr.add_argument("--config", type=Path, help="a train.yaml other than the domain's")
    tr.add_argument("--engine", choices=["unsloth", "transformers+peft"], help="default: unsloth when importable")
    tr.add_argument("--job", type=int, help=argparse.SUPPRESS)  # run by `up` for a queued job: progress to Postgres

    ev = sub.add_parser("eval", help="scripted conversations and benchmarks").add_subparsers(dest="what", required=True)

    def eval_command(name: str, func, help: str) -> argparse.ArgumentParser:
        c = ev.add_parser(name, help=help)
        c.set_defaults(func=func)
        c.add_argument("domain", choices=DOMAINS)
        c.add_argument("--quiet", action="store_true", help="no progress bars")
        return c

    ec = eval_command("conversations", cmd_eval_conversations, "run scripted conversations; exit 1 if any expectation fails")
    ec.add_argument("scripts", nargs="*", type=Path, help="script files or folders (default: the domain's evaluation.scripts)")
    ec.add_argument("--url", help="a running deployment (through gradio_client) instead of in-process")
    ec.add_argument("--auth", help="user:password for a deployment with a login")

    eb = eval_command("bench", cmd_eval_bench, "benchmarks in each mode; writes a report folder and stores the run")
    eb.add_argument("--out", type=Path, required=True, help="report folder (JSON, Markdown, HTML, plots, per-item results)")
    eb.add_argument("--modes", nargs="+", choices=["base", "rag", "finetune", "hybrid"], help="default: each benchmark's")
    eb.add_argument("--limit", type=int, help="items per benchmark (a fixed subset); default all")
    eb.add_argument("--benchmark", action="append", help="only this benchmark (repeatable)")
    eb.add_argument("--data", type=Path, help="another file of the benchmark's format (needs one --benchmark)")
    eb.add_argument("--ci", action="store_true", help="each benchmark's ci_limit subset; exit 1 below a threshold")

    eval_command("history", cmd_eval_history, "benchmark runs stored in Postgres, newest first").add_argument(
        "-n", type=int, default=10, help="how many runs")

    us = command("users", cmd_users, "login accounts for the chat UIs", domain=False)
    us.add_argument("action", choices=["add", "list", "roles", "disable"])
    us.add_argument("username", nargs="?")
    us.add_argument("--display-name")
    us.add_argument("--role", action="append", metavar="ROLE",
                    help="reviewer (every domain's review page) or reviewer:DOMAIN; repeatable. With add: the "
                         "account's roles (kept when omitted); with roles: the new set (none when omitted)")
    us.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    audit_cli.register(sub)
    keys_cli.register(sub)
    review_cli.register(sub)
    jobs_cli.register(sub)
    label_cli.register(sub)

    for domain in DOMAINS:
        spec = settings_for(domain).domain.commands
        if spec:
            dp = sub.add_parser(domain, help=f"{domain} data commands")
            dp.set_defaults(func=cmd_domain, domain=domain)
            resolve(spec)(dp.add_subparsers(dest="action", required=True))

    ad = command("adapters", cmd_adapters, "list, show or promote registered adapters", domain=False)
    ad.add_argument("action", choices=["list", "show", "promote"])
    ad.add_argument("domain", choices=DOMAINS)
    ad.add_argument("version", nargs="?")
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

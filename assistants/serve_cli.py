"""``assistants up|serve|ask``: the assistants in use. ``up`` prepares and serves every domain
at once (training missing adapters in the background), ``serve`` one domain's chat UI, ``ask``
one grounded answer on the command line."""
from __future__ import annotations

import argparse
import time
from datetime import date

from shared import logs
from shared.plugins import SETUP_HOOK, lookup

from .common import command, failures, runtime
from .domains import domains, samples_dir, settings_for


def _stage(text: str, t0: float) -> None:
    """One line per stage of `up`, with how long it took."""
    print(f"{text} ({time.perf_counter() - t0:.1f} s)", flush=True)


def cmd_up(args) -> int:
    """The main job: the database, every domain's samples ingested, the three chat UIs
    served at once (base models where no adapter is promoted yet), and the missing adapters
    trained in the background, switched in live when promoted."""
    names = domains()
    state = settings_for(names[0]).state_dir
    log_file = state / "logs" / "up.log"
    if not args.verbose:
        logs.to_file(log_file)
        print(f"assistants up: details in {log_file} (--verbose shows them here)", flush=True)
    t0 = time.perf_counter()
    serving = not args.no_serve
    first = runtime(names[0], serving=serving)
    runtimes = [first] + [runtime(d, db=first.db, serving=serving) for d in names[1:]]
    where = f"embedded Postgres in {first.db.data_dir}" if first.db.embedded else "DATABASE_URL"
    _stage(f"database ready: {where}", t0)
    failed, runner = 0, None
    bars = args.verbose and not args.quiet
    try:
        if not args.no_serve:
            t0 = time.perf_counter()
            for rt in runtimes:
                rt.generator  # before the embedding model: unsloth must be imported before transformers
            served = runtimes[0].generator.describe()
            _stage(f"model loaded: {served['model']}" + (f" ({served['engine']})" if "engine" in served else ""), t0)
        for domain, rt in zip(names, runtimes):
            t0 = time.perf_counter()
            summary = rt.ingestor().run([samples_dir(domain)], prune=True, progress=bars)
            failed += failures(summary)
            done = (f"[{domain}] corpus ingested: {summary.new} new, {summary.changed} changed, "
                    f"{summary.unchanged} unchanged")
            if rt.settings.domain.setup:
                done += f"; {lookup(SETUP_HOOK, rt.settings.domain.setup)(rt, progress=bars)}"
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


def server_for(rt):
    """The domain's app, wired from its runtime: the chat engine, and the database, store and
    document service its other pages use."""
    from shared.ui import create_server

    # The store at the first span page, as before: opening it makes sure of the collection
    # and its index, which serving need not wait for.
    return create_server(rt.chat_engine(), db=rt.db, nodes=lambda ids: rt.store.get_nodes(node_ids=ids),
                         documents=rt.document_service())


def _servers(runtimes, host: str | None = None, port: int | None = None, port_base: int | None = None) -> list:
    """(app, host, port) per runtime, each announced with its URL and who can reach it."""
    apps = []
    for i, rt in enumerate(runtimes):
        ui = rt.settings.ui
        h, p = host or ui.host, port or (port_base + i if port_base else ui.port)
        t0 = time.perf_counter()
        apps.append((server_for(rt), h, p))
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
    with runtime(args.domain, serving=True) as rt:
        rt.generator  # load the model before serving (and before the embedding model, for unsloth)
        from shared.ui import serve

        serve(_servers([rt], args.host, args.port))
    return 0


def cmd_ask(args) -> int:
    with runtime(args.domain) as rt:
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


def register(sub) -> None:
    """Add ``up``, ``serve`` and ``ask`` to the top-level subparsers of ``assistants``."""
    up = command(sub, "up", cmd_up, "start the database, ingest every domain's samples, serve the UIs, train missing "
                 "adapters in the background", domain=False, quiet=True)
    up.add_argument("--no-serve", action="store_true", help="prepare only, do not serve the UIs")
    up.add_argument("--no-train", action="store_true", help="queue and run no training jobs (serve what is promoted)")
    up.add_argument("--port-base", type=int, help="serve the domains on PORT, PORT+1, ... (default: each ui.port)")
    # Also after `up` (SUPPRESS: absent, it leaves `assistants --verbose up` as it was).
    up.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                    help="library warnings and progress bars on the terminal instead of the log file")

    sv = command(sub, "serve", cmd_serve, "serve one assistant's chat UI")
    sv.add_argument("--host", help="interface (default: ui.host)")
    sv.add_argument("--port", type=int, help="port (default: the domain's ui.port)")

    ak = command(sub, "ask", cmd_ask, "ask one question on the command line")
    ak.add_argument("question")
    ak.add_argument("--principal", default="cli", help="whose private documents count, and who owns the record")
    ak.add_argument("--as-of", type=date.fromisoformat, help="answer from what was in force on this date")

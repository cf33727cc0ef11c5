"""``assistants eval conversations|bench|history``: a domain's scripted conversations (in-process
or against a deployment), its benchmarks in each mode (a report folder, the run stored in
Postgres), and the benchmark runs stored earlier."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import command, runtime
from .domains import domain_dir, settings_for


def cmd_eval_conversations(args) -> int:
    from shared.evaluation.clients import LocalClient, RemoteClient
    from shared.evaluation.conversations import bare_speed, context_for, run_scripts, summary
    from shared.evaluation.scripts import load_scripts

    s = settings_for(args.domain)
    root = domain_dir(args.domain)
    scripts = load_scripts(args.scripts or [root / s.evaluation.scripts])
    timed = any(t.expect.latency_ratio for sc in scripts for t in sc.turns)
    with runtime(args.domain) as rt:
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
    with runtime(args.domain) as rt:
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

    with runtime(args.domain) as rt:
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

def register(sub) -> None:
    """Add ``eval`` and its commands to the top-level subparsers of ``assistants``."""
    ev = sub.add_parser("eval", help="scripted conversations and benchmarks").add_subparsers(dest="what", required=True)

    ec = command(ev, "conversations", cmd_eval_conversations,
                 "run scripted conversations; exit 1 if any expectation fails", quiet=True)
    ec.add_argument("scripts", nargs="*", type=Path, help="script files or folders (default: the domain's evaluation.scripts)")
    ec.add_argument("--url", help="a running deployment (through gradio_client) instead of in-process")
    ec.add_argument("--auth", help="user:password for a deployment with a login")

    eb = command(ev, "bench", cmd_eval_bench, "benchmarks in each mode; writes a report folder and stores the run",
                 quiet=True)
    eb.add_argument("--out", type=Path, required=True, help="report folder (JSON, Markdown, HTML, plots, per-item results)")
    eb.add_argument("--modes", nargs="+", choices=["base", "rag", "finetune", "hybrid"], help="default: each benchmark's")
    eb.add_argument("--limit", type=int, help="items per benchmark (a fixed subset); default all")
    eb.add_argument("--benchmark", action="append", help="only this benchmark (repeatable)")
    eb.add_argument("--data", type=Path, help="another file of the benchmark's format (needs one --benchmark)")
    eb.add_argument("--ci", action="store_true", help="each benchmark's ci_limit subset; exit 1 below a threshold")

    command(ev, "history", cmd_eval_history, "benchmark runs stored in Postgres, newest first", quiet=True).add_argument(
        "-n", type=int, default=10, help="how many runs")

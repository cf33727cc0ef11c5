"""``assistants jobs``: the background training jobs (queued by ``up`` for a domain's first
adapter, or by a reviewer for accepted feedback; trained one at a time by the running
``up``). Also the runner that ``up`` starts, and its one updating line of progress."""
from __future__ import annotations

import sys
from pathlib import Path

from .common import command, runtime
from .domains import domains, domain_dir, settings_for


def job_queue(rt):
    """The jobs table of the runtime's database."""
    from shared.finetune.jobs import JobQueue

    return JobQueue(rt.db)


def cmd_jobs(args) -> int:
    with runtime(domains()[0]) as rt:
        queue = job_queue(rt)
        if args.action == "list":
            jobs = queue.listing(args.n)
            for job in jobs:
                print(describe(job))
            if not jobs:
                print("no training jobs yet")
            return 0
        if args.action == "add":
            if args.target not in domains():
                print(f"error: add needs a DOMAIN (one of {', '.join(domains())})", file=sys.stderr)
                return 2
            from shared.finetune.jobs import REVIEWED_FEEDBACK

            job = queue.add(args.target, args.reason or REVIEWED_FEEDBACK)
            print(f"job {job.id} {job.status}: {job.domain} ({job.reason}); the running `assistants up` trains it "
                  "(or the next one)")
            return 0
        if not (args.target or "").isdigit():
            print("error: cancel needs a job ID (see `assistants jobs list`)", file=sys.stderr)
            return 2
        if not queue.cancel(int(args.target)):
            print(f"error: job {args.target} is not queued or running", file=sys.stderr)
            return 1
        print(f"job {args.target} cancelled")
    return 0


def describe(job) -> str:
    """One line per job: id, domain, state and what it led to."""
    error = (job.error or "").strip().splitlines()
    detail = {"queued": "", "running": job.progress(), "done": job.outcome or "",
              "failed": error[-1] if error else "", "cancelled": ""}[job.status]
    return (f"{job.id:>4}  {job.domain:8}  {job.status:9}  {job.created_at:%Y-%m-%d %H:%M}  {job.reason}"
            f"{'  ' + job.version if job.version else ''}{'  ' + detail if detail else ''}")


def register(sub) -> None:
    """Add ``jobs`` to the top-level subparsers of ``assistants``."""
    jb = command(sub, "jobs", cmd_jobs, "background training jobs: list, add DOMAIN, cancel ID", domain=False)
    jb.add_argument("action", nargs="?", default="list", choices=["list", "add", "cancel"])
    jb.add_argument("target", nargs="?", metavar="DOMAIN|ID", help="add: the domain to train; cancel: the job id")
    jb.add_argument("--reason", help="add: recorded with the job (default: reviewed feedback)")
    jb.add_argument("-n", type=int, default=20, help="list: how many jobs, newest first")


def queue_first_adapters(queue) -> list[str]:
    """A domain that serves its promoted adapter, has a train.yaml and nothing registered
    gets a job for its first adapter, unless one was cancelled (a decision kept until
    `assistants jobs add DOMAIN`). Returns a line per domain queued."""
    from shared.finetune import AdapterRegistry
    from shared.finetune.jobs import FIRST_ADAPTER
    from shared.finetune.serving import PROMOTED

    lines = []
    for domain in domains():
        s = settings_for(domain)
        if s.generation.adapter != PROMOTED or not (domain_dir(domain) / "train.yaml").is_file():
            continue
        if AdapterRegistry(s.state_dir, domain).versions():
            continue
        if any(j.status == "cancelled" for j in queue.history(domain, FIRST_ADAPTER)):
            lines.append(f"[{domain}] first adapter cancelled earlier: base model "
                         f"(`assistants jobs add {domain}` trains it)")
            continue
        job = queue.add(domain, FIRST_ADAPTER)
        lines.append(f"[{domain}] base model until its first adapter is trained in the background (job {job.id})")
    return lines


def train_command(job, settings) -> list[str]:
    """The child process of a job: `assistants train` resuming the domain's unfinished run."""
    cmd = [sys.executable, "-m", "assistants.cli", "train", job.domain, "--resume", "--quiet", "--job", str(job.id)]
    return cmd + (["--max-steps", str(settings.jobs.max_steps)] if settings.jobs.max_steps else [])


class ProgressLine:
    """The job's progress as one line, rewritten in place on a terminal; elsewhere (a log,
    a pipe) a line per change of state only."""

    def __init__(self, stream=sys.stdout):
        self.stream, self.tty = stream, stream.isatty()
        self._last: tuple | None = None

    def __call__(self, job) -> None:
        from shared.finetune.jobs import PENDING

        key = (job.id, job.status) if not self.tty else (job.id, job.status, job.step, job.eta_s)
        if key == self._last:
            return
        self._last = key
        text = f"[jobs] {describe(job).strip()}"
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("" if job.status in PENDING else "\n"))
        else:
            self.stream.write(text + "\n")
        if job.status == "failed" and job.error:  # errors in full, not only their last line
            self.stream.write("".join(f"    {line}\n" for line in job.error.splitlines()))
        self.stream.flush()


def start_runner(rt, log_file: Path, show):
    """The runner `up` starts once its servers answer."""
    from shared.finetune.jobs import JobRunner

    runner = JobRunner(job_queue(rt), settings_for, train_command, log_file, rt.settings.jobs.poll_s, show)
    runner.start()
    return runner

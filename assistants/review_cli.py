"""``assistants review DOMAIN``: the queue of training examples proposed from the chat UIs
(liked answers, users' corrections). List them, accept (optionally with an edited answer)
or reject; accepted examples join the domain's next `assistants train` run."""
from __future__ import annotations

import getpass
import sys

from .common import command, runtime


def cmd_review(args) -> int:
    from shared.candidates import Candidates, ReviewError

    with runtime(args.domain) as rt:
        queue = Candidates(rt.db, args.domain)
        if args.accept or args.reject:
            try:
                queue.review(args.accept or args.reject, args.reviewer, accept=bool(args.accept), answer=args.answer)
            except ReviewError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            print(f"{'accepted' if args.accept else 'rejected'} {args.accept or args.reject}")
            if args.train:
                _queue_training(rt, args.domain)
            return 0
        if args.train:
            _queue_training(rt, args.domain)
            return 0
        found = queue.listing(args.status)
    for c in found:
        print(f"{c.id}  {c.kind:9}  by {c.principal}  model {c.model} adapter {c.adapter or 'none'}"
              f"  conversation {c.conversation_id}  cited {', '.join(c.sources) or 'nothing'}")
        print(f"  Q: {c.question}\n  A: {c.answer}\n")
    print(f"{len(found)} {args.status} candidate(s) for {args.domain}")
    return 0


def _queue_training(rt, domain: str) -> None:
    """The accepted examples train in the background job queue that `up` runs (one job at a
    time, promoted through the gate, switched in live)."""
    from shared.finetune.jobs import REVIEWED_FEEDBACK, JobQueue

    job = JobQueue(rt.db).add(domain, REVIEWED_FEEDBACK)
    print(f"training job {job.id} {job.status} for {domain}: the running `assistants up` trains it (`assistants jobs`)")


def register(sub) -> None:
    """Add ``review`` to the top-level subparsers of ``assistants``."""
    rv = command(sub, "review", cmd_review, "review training examples proposed from the chat UIs")
    act = rv.add_mutually_exclusive_group()
    act.add_argument("--accept", metavar="ID", help="accept this candidate for training")
    act.add_argument("--reject", metavar="ID", help="reject this candidate")
    rv.add_argument("--answer", help="with --accept: the answer to train on instead of the proposed one")
    rv.add_argument("--status", default="pending", choices=["pending", "accepted", "rejected"],
                    help="which candidates to list")
    rv.add_argument("--reviewer", default=getpass.getuser(), help="recorded with the decision")
    rv.add_argument("--train", action="store_true",
                    help="queue a background training on the accepted examples (alone, or after --accept)")

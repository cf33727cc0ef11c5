"""Benchmark runs stored in Postgres, so scores can be compared over time."""
from __future__ import annotations

from psycopg.types.json import Jsonb

from .bench import Run


def save(db, run: Run) -> str:
    with db.session() as conn:
        (run_id,) = conn.execute(
            "INSERT INTO eval_runs (domain, config, scores, finished_at) VALUES (%s, %s, %s, now()) RETURNING id",
            (run.domain, Jsonb({**run.config, "skipped": run.skipped}), Jsonb(run.scores))).fetchone()
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO eval_items (run_id, benchmark, mode, item_id, result) VALUES (%s, %s, %s, %s, %s)",
                [(run_id, r["benchmark"], r["mode"], str(r["id"]), Jsonb(r)) for r in run.items])
    return str(run_id)


def recent(db, domain: str, limit: int = 10) -> list[tuple]:
    """(id, finished_at, config, scores) of the latest runs, newest first."""
    with db.session() as conn:
        return conn.execute("SELECT id, finished_at, config, scores FROM eval_runs WHERE domain = %s"
                            " ORDER BY started_at DESC LIMIT %s", (domain, limit)).fetchall()

"""The review queue between chat feedback and fine-tuning.

Users propose examples: an answer they liked, or a correction they wrote. A reviewer
accepts (optionally editing the answer) or rejects them. Accepted examples are read from
Postgres each time a domain trains (the training data source ``feedback`` in its
train.yaml), so they pass through the same cleaning, PII scrub and de-duplication against
the rest of the data as any source, and an erased user's examples are gone from every
later run. After training, each example records the adapter versions it went into."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from psycopg.rows import dict_row

from .db import Database
from .plugins import training_source

# The group key of a feedback example in the training rows: it names the candidate, so the
# run can tell which candidates it trained on.
GROUP_PREFIX = "feedback:"
ACCEPTED_ANSWER = "coalesce(reviewed_answer, answer)"


class ReviewError(LookupError):
    """No such candidate awaiting review in this domain."""


@dataclass
class Candidate:
    id: str
    kind: str
    status: str
    principal: str
    question: str
    answer: str
    conversation_id: str
    model: str | None
    adapter: str | None
    sources: list[str]


class Candidates:
    def __init__(self, db: Database, domain: str):
        self.db, self.domain = db, domain

    # ---- users (application role, their own rows) -------------------------------------
    def propose(self, principal: str, message_id: str, kind: str, answer: str | None = None) -> None:
        """A liked answer (``answer`` None: the answer itself) or a correction of it."""
        with self.db.session(principal) as conn:
            conn.execute(
                "INSERT INTO training_candidates (domain, message_id, kind, question, answer)"
                " SELECT %(domain)s, m.id, %(kind)s, q.content, coalesce(%(answer)s, m.content)"
                " FROM messages m CROSS JOIN LATERAL (SELECT content FROM messages u WHERE"
                "  u.conversation_id = m.conversation_id AND u.role = 'user' AND u.created_at < m.created_at"
                "  ORDER BY u.created_at DESC LIMIT 1) q"
                " WHERE m.id = %(mid)s AND m.role = 'assistant'"
                # A changed proposal goes back for review; the same one again changes nothing.
                " ON CONFLICT (message_id, kind) DO UPDATE SET answer = EXCLUDED.answer, status = 'pending',"
                " reviewed_answer = NULL, reviewer = NULL, reviewed_at = NULL"
                " WHERE training_candidates.answer IS DISTINCT FROM EXCLUDED.answer",
                {"domain": self.domain, "kind": kind, "answer": answer, "mid": message_id})

    def withdraw(self, principal: str, message_id: str, kind: str) -> None:
        """A like taken back (a dislike): the proposal goes unless already reviewed."""
        with self.db.session(principal) as conn:
            conn.execute("DELETE FROM training_candidates WHERE message_id = %s AND kind = %s AND status = 'pending'",
                         (message_id, kind))

    # ---- reviewers and training (owner) -----------------------------------------------
    def listing(self, status: str = "pending") -> list[Candidate]:
        with self.db.owner_session() as conn:
            rows = conn.cursor(row_factory=dict_row).execute(
                "SELECT c.id::text, c.kind, c.status, c.principal, c.question, " + ACCEPTED_ANSWER + " AS answer,"
                " m.conversation_id::text, m.model, m.adapter,"
                " coalesce((SELECT array_agg(s.doc_id ORDER BY s.rank) FROM message_sources s"
                "  WHERE s.message_id = m.id AND s.cited), '{}') AS sources"
                " FROM training_candidates c JOIN messages m ON m.id = c.message_id"
                " WHERE c.domain = %s AND c.status = %s ORDER BY c.created_at", (self.domain, status)).fetchall()
        return [Candidate(**r) for r in rows]

    def conversation(self, candidate_id: str) -> list[tuple[str, str]]:
        """(role, text) of the candidate's conversation up to the answer it proposes."""
        with self.db.owner_session() as conn:
            return conn.execute(
                "SELECT m.role, m.content FROM training_candidates c JOIN messages a ON a.id = c.message_id"
                " JOIN messages m ON m.conversation_id = a.conversation_id AND m.created_at <= a.created_at"
                " WHERE c.id::text = %s AND c.domain = %s ORDER BY m.created_at", (candidate_id, self.domain)).fetchall()

    def review(self, candidate_id: str, reviewer: str, accept: bool, answer: str | None = None) -> None:
        with self.db.owner_session() as conn:
            done = conn.execute(
                "UPDATE training_candidates SET status = %s, reviewed_answer = %s, reviewer = %s, reviewed_at = now()"
                " WHERE id::text = %s AND domain = %s AND status = 'pending'",
                ("accepted" if accept else "rejected", answer, reviewer, candidate_id, self.domain)).rowcount
        if not done:
            raise ReviewError(f"no pending candidate {candidate_id} in {self.domain}")

    def accepted(self) -> Iterator[dict]:
        with self.db.owner_session() as conn:
            for cid, question, answer in conn.execute(
                    "SELECT id::text, question, " + ACCEPTED_ANSWER + " FROM training_candidates"
                    " WHERE domain = %s AND status = 'accepted' ORDER BY created_at", (self.domain,)):
                yield {"question": question, "answer": answer, "group": GROUP_PREFIX + cid}

    def mark_trained(self, candidate_ids: list[str], version: str) -> int:
        with self.db.owner_session() as conn:
            return conn.execute(
                "UPDATE training_candidates SET trained_in = array_append(trained_in, %s)"
                " WHERE domain = %s AND id::text = ANY(%s)", (version, self.domain, candidate_ids)).rowcount


@training_source("feedback")
def accepted_examples(path: Path) -> Iterator[dict]:
    """The train.yaml training data source ``feedback``: reviewed feedback (``path: feedback``,
    a name in the domain folder that needs no file: the examples are in Postgres)."""
    from .settings import load_settings

    settings = load_settings(Path(path).parent)
    with Database.for_settings(settings) as db:
        yield from Candidates(db, settings.domain.name).accepted()


def trained_candidates(rows: list[dict]) -> list[str]:
    """The candidate ids among training rows (by their group key)."""
    return [r["group"][len(GROUP_PREFIX):] for r in rows if str(r.get("group", "")).startswith(GROUP_PREFIX)]

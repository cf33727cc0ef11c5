"""Chat records in Postgres: the audit trail of every answer and the basis of feedback.
Each call runs as the principal, so row-level security keeps conversations private."""
from __future__ import annotations

import uuid
from typing import Sequence

from psycopg.types.json import Jsonb

from ..db import Database
from ..candidates import Candidates
from ..text import clean_text
from ..types import Passage


class UnknownConversation(LookupError):
    """The conversation does not exist for this principal (it may be someone else's)."""


class Recorder:
    def __init__(self, db: Database, domain: str):
        self.db = db
        self.domain = domain
        self.candidates = Candidates(db, domain)

    def start(self, principal: str) -> str:
        with self.db.session(principal) as conn:
            (cid,) = conn.execute("INSERT INTO conversations (domain) VALUES (%s) RETURNING id", (self.domain,)).fetchone()
        return str(cid)

    def history(self, principal: str, conversation_id: str, turns: int) -> list[dict]:
        """The last ``turns`` exchanges, oldest first, as chat messages; raises
        ``UnknownConversation`` for a conversation this principal cannot see."""
        with self.db.session(principal) as conn:
            if conn.execute("SELECT 1 FROM conversations WHERE id = %s AND domain = %s",
                            (_uuid(conversation_id), self.domain)).fetchone() is None:
                raise UnknownConversation(f"no conversation {conversation_id} for this user")
            rows = conn.execute(
                "SELECT role, content FROM messages WHERE conversation_id = %s AND error IS NULL"
                " ORDER BY created_at DESC LIMIT %s", (_uuid(conversation_id), 2 * turns)).fetchall()
        return [{"role": r, "content": c} for r, c in reversed(rows)]

    def add_question(self, principal: str, conversation_id: str, text: str, channel: str = "ui") -> str:
        """``channel``: the door the turn came through, ``ui`` or ``api`` (the /v1 API)."""
        with self.db.session(principal) as conn:
            (mid,) = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, channel) VALUES (%s, 'user', %s, %s) RETURNING id",
                (_uuid(conversation_id), text, channel)).fetchone()
        return str(mid)

    def add_answer(self, principal: str, conversation_id: str, text: str, *, retrieval_query: str | None,
                   grounded: bool, generator: dict, timings: dict, usage: dict,
                   passages: Sequence[Passage], error: str | None = None, channel: str = "ui") -> str:
        with self.db.session(principal) as conn:
            (mid,) = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, retrieval_query, grounded, backend, model,"
                " adapter, timings, usage, error, channel) VALUES (%s, 'assistant', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " RETURNING id",
                (_uuid(conversation_id), text, retrieval_query, grounded, generator.get("backend"),
                 generator.get("model"), generator.get("adapter"), Jsonb(timings), Jsonb(usage), error,
                 channel)).fetchone()
            if passages:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO message_sources (message_id, rank, collection, node_id, doc_id, score,"
                        " similarity, in_prompt, cited) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [(mid, p.rank, self.domain, p.node_id, p.doc_id, p.score, p.similarity, p.in_prompt, p.cited)
                         for p in passages])
        return str(mid)

    def feedback(self, principal: str, message_id: str, rating: int, comment: str | None = None) -> None:
        """Like (1) or dislike (-1) an answer; a liked answer is proposed as a training
        example (reviewed before any training), a dislike withdraws that proposal."""
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (like) or -1 (dislike)")
        with self.db.session(principal) as conn:
            mid = _own_answer(conn, message_id)
            conn.execute(
                "INSERT INTO feedback (message_id, rating, comment) VALUES (%s, %s, %s)"
                " ON CONFLICT (message_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment,"
                " created_at = now()", (mid, rating, comment))
        if rating == 1:
            self.candidates.propose(principal, mid, "liked")
        else:
            self.candidates.withdraw(principal, mid, "liked")

    def correct(self, principal: str, message_id: str, answer: str) -> None:
        """The user's own corrected answer, proposed as a training example for review."""
        answer = clean_text(answer or "").strip()
        if not answer:
            raise ValueError("the correction is empty")
        with self.db.session(principal) as conn:
            mid = _own_answer(conn, message_id)
        self.candidates.propose(principal, mid, "corrected", answer)


def _own_answer(conn, message_id: str) -> uuid.UUID:
    """The id of an answer the connection's principal can see (row-level security)."""
    mid = _uuid(message_id)
    if conn.execute("SELECT 1 FROM messages WHERE id = %s AND role = 'assistant'", (mid,)).fetchone() is None:
        raise UnknownConversation(f"no answer {message_id} for this user")
    return mid


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise UnknownConversation(f"not a conversation or message id: {value!r}") from None

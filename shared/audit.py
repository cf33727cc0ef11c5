"""Everything the suite stores about one principal: exported as JSON (a subject access
request) or erased (the right to erasure), without touching any other principal's rows.

Both run on the owner connection: an administrator acts for the principal, who may no
longer be able to log in. That connection bypasses row-level security, so every statement
here filters by principal itself (and never matches public rows, whose owner is NULL).
Domain business records that a firm must keep (e.g. finance client books) live in domain
tables and are neither read nor erased here: shared code knows only the core tables."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from .db import Database

MESSAGE_COLS = ("id, conversation_id, role, content, created_at, retrieval_query, grounded, backend, model,"
                " adapter, timings, usage, error, channel")
SOURCE_COLS = "message_id, rank, collection, node_id, doc_id, score, similarity, in_prompt, cited"

# Rows of *other* principals that hang off this principal's conversations or messages. The
# application writes these only through row-level security, but a foreign-key check does not
# consult it, so they can exist; the ON DELETE CASCADE would then erase someone else's record.
FOREIGN_DEPENDENTS = """
SELECT (SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id
         WHERE c.principal = %(p)s AND m.principal <> %(p)s)
     + (SELECT count(*) FROM message_sources s JOIN messages m ON m.id = s.message_id
         WHERE m.principal = %(p)s AND s.principal <> %(p)s)
     + (SELECT count(*) FROM feedback f JOIN messages m ON m.id = f.message_id
         WHERE m.principal = %(p)s AND f.principal <> %(p)s)
"""

# Children before parents, so each count is this principal's own rows, not a cascade's.
ERASE_CHAT = [
    ("training_candidates", "DELETE FROM training_candidates WHERE principal = %(p)s"),
    ("feedback", "DELETE FROM feedback WHERE principal = %(p)s"),
    ("message_sources", "DELETE FROM message_sources WHERE principal = %(p)s"),
    ("messages", "DELETE FROM messages WHERE principal = %(p)s"),
    ("conversations", "DELETE FROM conversations WHERE principal = %(p)s"),
]
# `owner = p` never matches a public row (owner NULL).
ERASE_DOCUMENTS = [
    ("chunks", "DELETE FROM chunks WHERE owner = %(p)s"),
    ("documents", "DELETE FROM documents WHERE owner = %(p)s"),
]
# The account row is deleted, not disabled and anonymised: the login name *is* the principal,
# the identifier being erased, and it is the primary key, so an anonymised row would either
# keep it or be an unconnected stub. Caveat: business records kept under the login in domain
# tables (finance clients.principal) stay, so a new account of the same name would see them;
# administrators should not reuse an erased login name.
ERASE_ACCOUNT = [("users", "DELETE FROM users WHERE username = %(p)s"),
                 ("api_keys", "DELETE FROM api_keys WHERE principal = %(p)s")]  # a key would act as the erased principal


class ErasureRefused(RuntimeError):
    """Erasing would cascade into another principal's rows; nothing was deleted."""


def _principal(principal: str | None) -> str:
    # An empty principal is the system context: `principal = ''` matches nothing today, but
    # refusing it keeps a typo from ever being read as "everyone" or "the public rows".
    if not principal or not principal.strip():
        raise ValueError("a principal is required")
    return principal


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def _rows(conn, query: str, principal: str) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    return [{k: _plain(v) for k, v in r.items()} for r in cur.execute(query, {"p": principal})]


def export(db: Database, principal: str) -> dict:
    """A JSON-serialisable record of the principal's conversations (messages in order, each
    with its sources and feedback), private documents (no text or embeddings) and login
    account (never the password hash)."""
    principal = _principal(principal)
    with db.owner_session() as conn:
        conversations = _rows(conn, "SELECT id, domain, created_at FROM conversations"
                                    " WHERE principal = %(p)s ORDER BY created_at, id", principal)
        messages = _rows(conn, f"SELECT {MESSAGE_COLS} FROM messages WHERE principal = %(p)s"
                               " ORDER BY created_at, id", principal)
        sources = _rows(conn, f"SELECT {SOURCE_COLS} FROM message_sources WHERE principal = %(p)s"
                              " ORDER BY message_id, rank", principal)
        feedback = _rows(conn, "SELECT message_id, rating, comment, created_at FROM feedback"
                               " WHERE principal = %(p)s", principal)
        documents = _rows(conn, "SELECT collection, doc_id, title, source, metadata, valid_from, valid_to,"
                                " ingested_at, (SELECT count(*) FROM chunks c WHERE c.collection = d.collection"
                                " AND c.doc_id = d.doc_id AND c.owner = d.owner) AS chunks"
                                " FROM documents d WHERE owner = %(p)s ORDER BY collection, doc_id", principal)
        account = _rows(conn, "SELECT username, display_name, disabled, created_at, updated_at FROM users"
                              " WHERE username = %(p)s", principal)
        proposals = _rows(conn, "SELECT id, domain, message_id, kind, question, answer, status, reviewed_answer,"
                                " reviewed_at, trained_in, created_at FROM training_candidates"
                                " WHERE principal = %(p)s ORDER BY created_at", principal)
    by_message: dict[str, list[dict]] = {}
    for s in sources:
        by_message.setdefault(s.pop("message_id"), []).append(s)
    rating = {f.pop("message_id"): f for f in feedback}
    by_conversation: dict[str, list[dict]] = {}
    for m in messages:
        m.update(sources=by_message.get(m["id"], []), feedback=rating.get(m["id"]))
        by_conversation.setdefault(m.pop("conversation_id"), []).append(m)
    for c in conversations:
        c["messages"] = by_conversation.get(c["id"], [])
    return {
        "principal": principal,
        "exported_at": datetime.now(timezone.utc).isoformat(),
        "account": account[0] if account else None,
        "conversations": conversations,
        "documents": documents,
        "training_proposals": proposals,
    }


def erase(db: Database, principal: str, *, documents: bool = True, state_dir: Path | None = None) -> dict[str, int]:
    """Delete the principal's chat records and training proposals, private documents (unless
    ``documents=False``) and login account in one transaction; returns the rows deleted per
    table. Raises ``ErasureRefused`` (and deletes nothing) if another principal's rows depend
    on them. With ``state_dir``, the data card of every adapter already trained on their
    examples says so afterwards."""
    principal = _principal(principal)
    steps = ERASE_CHAT + (ERASE_DOCUMENTS if documents else []) + ERASE_ACCOUNT
    with db.owner_session() as conn:
        (foreign,) = conn.execute(FOREIGN_DEPENDENTS, {"p": principal}).fetchone()
        if foreign:
            raise ErasureRefused(f"{foreign} row(s) of other principals depend on {principal}'s chat records")
        trained = conn.execute("SELECT domain, v, count(*) FROM training_candidates, unnest(trained_in) v"
                               " WHERE principal = %(p)s GROUP BY 1, 2", {"p": principal}).fetchall()
        counts = {table: conn.execute(stmt, {"p": principal}).rowcount for table, stmt in steps}
    if state_dir is not None:
        from .finetune import AdapterRegistry

        for domain, version, n in trained:
            AdapterRegistry(state_dir, domain).note_erasure(version, n)
    return counts

"""Keys of the OpenAI-compatible API: ``asst-<random>``, shown once when created, stored as
a SHA-256 in ``api_keys`` (migration 0009). A key resolves to its principal, the identity
row-level security binds, optionally only for one domain and until an expiry date."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from .db import Database

PREFIX = "asst-"
SHOWN = 12  # characters of a key kept in clear to name it in listings


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass
class ApiKey:
    id: str
    prefix: str
    principal: str
    domain: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used: datetime | None


class ApiKeys:
    def __init__(self, db: Database):
        self.db = db

    def create(self, principal: str, domain: str | None = None, expires_days: float | None = None) -> tuple[str, str]:
        """(key id, the key itself): the key is never stored, so this is the only time it exists."""
        principal = (principal or "").strip()
        if not principal:
            raise ValueError("a principal is required: the key acts as that user")
        if expires_days is not None and expires_days <= 0:
            raise ValueError("--expires takes a positive number of days")
        key = PREFIX + secrets.token_urlsafe(32)
        with self.db.owner_session() as conn:
            (kid,) = conn.execute(
                "INSERT INTO api_keys (key_hash, prefix, principal, domain, expires_at) VALUES (%s, %s, %s, %s,"
                " now() + make_interval(secs => %s)) RETURNING id",
                (digest(key), key[:SHOWN], principal, domain,
                 None if expires_days is None else expires_days * 86400)).fetchone()
        return str(kid), key

    def principal_of(self, key: str, domain: str) -> str | None:
        """The principal of a live key valid for ``domain``; None for a wrong, revoked or expired one."""
        if not key.startswith(PREFIX):
            return None
        with self.db.session() as conn:
            (principal,) = conn.execute("SELECT api_key_principal(%s, %s)", (digest(key), domain)).fetchone()
        return principal

    def revoke(self, key_id_or_prefix: str) -> int:
        """Revoke by key id or by the prefix shown in listings; returns how many were revoked."""
        with self.db.owner_session() as conn:
            return conn.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND"
                " (id::text = %s OR (length(%s) >= %s AND prefix = %s))",
                (key_id_or_prefix, key_id_or_prefix, SHOWN, key_id_or_prefix[:SHOWN])).rowcount

    def list(self, principal: str | None = None) -> list[ApiKey]:
        with self.db.owner_session() as conn:
            rows = conn.execute(
                "SELECT id::text, prefix, principal, domain, created_at, expires_at, revoked_at, last_used FROM api_keys"
                " WHERE %s::text IS NULL OR principal = %s ORDER BY created_at", (principal, principal)).fetchall()
        return [ApiKey(*r) for r in rows]

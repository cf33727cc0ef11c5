"""Login sessions kept in Postgres for Gradio's sign-in.

Gradio keeps its session tokens in a dict of its own, per process and forever. This
mapping stands in for that dict: a token lives in the ``ui_sessions`` table (hashed), so
every replica of a domain accepts it, it ends after ``ui.session_hours`` or
``ui.session_idle_minutes`` without use, and disabling or erasing the account ends it."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, MutableMapping

from ..db import Database, DatabaseUnavailable
from ..settings import UISettings

OUTAGE_GRACE_S = 60.0


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore(MutableMapping[str, str]):
    """token -> login name, as Gradio's ``App.tokens`` uses it (set on sign-in, read on
    every request, deleted on sign-out)."""

    def __init__(self, db: Database, domain: str, ui: UISettings):
        self.db, self.domain = db, domain
        self.lifetime_s, self.idle_s = ui.session_hours * 3600, ui.session_idle_minutes * 60
        self._checked: dict[str, tuple[str, float]] = {}  # token -> (login, when the database last said so)

    def __setitem__(self, token: str, username: str) -> None:
        # Entries past the grace are of no use in an outage: forget them, so this stays small.
        now = time.monotonic()
        self._checked = {t: v for t, v in self._checked.items() if now - v[1] <= OUTAGE_GRACE_S}
        with self.db.session() as conn:
            conn.execute("SELECT session_open(%s, %s, %s, %s)",
                         (_digest(token), username.strip().lower(), self.domain, self.lifetime_s))

    def __getitem__(self, token: str) -> str:
        if not token:
            raise KeyError(token)
        try:
            with self.db.session() as conn:
                (user,) = conn.execute("SELECT session_user_of(%s, %s, %s, %s)",
                                       (_digest(token), self.domain, self.lifetime_s, self.idle_s)).fetchone()
        except DatabaseUnavailable:
            # While the database is down, a session checked moments ago still gets through,
            # so the user sees the turn fail with its reason instead of a bare server error.
            user, seen = self._checked.get(token, (None, 0.0))
            if user is None or time.monotonic() - seen > OUTAGE_GRACE_S:
                raise
            return user
        if user is None:
            self._checked.pop(token, None)
            raise KeyError(token)
        self._checked[token] = (user, time.monotonic())
        return user

    def __delitem__(self, token: str) -> None:
        self._checked.pop(token, None)
        with self.db.session() as conn:
            conn.execute("SELECT session_close(%s)", (_digest(token),))

    # Only hashes are stored, so the live tokens cannot be listed; sign-out closes the
    # caller's own session by its cookie (see server.py).
    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

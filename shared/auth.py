"""Login accounts: salted scrypt password hashes in the ``users`` table, verified for the
chat UIs' login. The login name becomes the principal that row-level security sees."""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from .db import Database

# scrypt with N=2^15, r=8 costs ~32 MiB and ~0.1 s per check: slow for a password guesser,
# still quick for one login. The parameters travel with each hash, so they can be raised later.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MIN_PASSWORD = 8


class UserError(ValueError):
    """A login name or password that cannot be used; the message says why."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` with a fresh 16-byte salt."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _decoy() -> str:
    """Checked when the login name is unknown, so a wrong name costs as long as a wrong
    password and response times do not tell which names exist."""
    return hash_password(secrets.token_hex(16))


ROLE_RE = re.compile(r"^reviewer(:[a-z0-9_]+)?$")
"""``reviewer`` reviews every domain's training candidates, ``reviewer:<domain>`` one domain's."""


def _check_roles(roles) -> None:
    bad = [r for r in roles if not ROLE_RE.match(r)]
    if bad:
        raise UserError(f"unknown role(s) {', '.join(bad)}: 'reviewer' or 'reviewer:<domain>'")


@dataclass
class User:
    username: str
    display_name: str | None
    disabled: bool
    roles: list[str]


class Users:
    def __init__(self, db: Database):
        self.db = db

    def verify(self, username: str, password: str) -> bool:
        """The Gradio login check, run as the application role (it sees one hash, no table)."""
        name = (username or "").strip().lower()
        stored = None
        if USERNAME_RE.match(name):
            with self.db.session() as conn:
                (stored,) = conn.execute("SELECT user_password_hash(%s)", (name,)).fetchone()
        ok = verify_password(password or "", stored or _decoy())
        return ok and stored is not None

    def can_review(self, username: str | None, domain: str) -> bool:
        """Whether this login may review ``domain``'s training candidates (application role)."""
        if not username:
            return False
        with self.db.session() as conn:
            (ok,) = conn.execute("SELECT user_has_role(%s, 'reviewer') OR user_has_role(%s, %s)",
                                 (username, username, f"reviewer:{domain}")).fetchone()
        return bool(ok)

    def add(self, username: str, password: str | None = None, display_name: str | None = None, *,
            password_hash: str | None = None, roles: list[str] | None = None) -> None:
        """Create or update an account (owner connection: administration, not a conversation).
        ``roles`` None keeps an existing account's roles; a list replaces them."""
        if not USERNAME_RE.match(username):
            raise UserError(f"invalid login name {username!r}: lowercase letters, digits, '.', '_' or '-'")
        _check_roles(roles or ())
        stored = password_hash or hash_password(password or "")
        with self.db.owner_session() as conn:
            conn.execute(
                "INSERT INTO users (username, password_hash, display_name, roles) VALUES (%s, %s, %s, coalesce(%s::text[], '{}'))"
                " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
                " display_name = coalesce(EXCLUDED.display_name, users.display_name), disabled = false,"
                " roles = coalesce(%s::text[], users.roles), updated_at = now()",
                (username, stored, display_name, roles, roles))

    def set_roles(self, username: str, roles: list[str]) -> bool:
        """Replace an account's roles; False when there is no such account."""
        _check_roles(roles)
        with self.db.owner_session() as conn:
            return conn.execute("UPDATE users SET roles = %s::text[], updated_at = now() WHERE username = %s",
                                (list(roles), username)).rowcount == 1

    def disable(self, username: str) -> bool:
        with self.db.owner_session() as conn:
            return conn.execute("UPDATE users SET disabled = true, updated_at = now() WHERE username = %s",
                                (username,)).rowcount == 1

    def list(self) -> list[User]:
        with self.db.owner_session() as conn:
            return [User(*row) for row in conn.execute(
                "SELECT username, display_name, disabled, roles FROM users ORDER BY username")]

"""Versioned, idempotent schema migrations (``migrations/NNNN_name.sql``), applied once
each under an advisory lock so that concurrent starters do not race."""
from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_302_113  # arbitrary, constant: serialises migrators across processes


def migrations() -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if not m:
            raise RuntimeError(f"bad migration file name {path.name} (want NNNN_name.sql)")
        found.append((int(m.group(1)), m.group(2), path))
    return found


def apply(conn: psycopg.Connection, params: dict[str, sql.Composable]) -> list[int]:
    """Apply pending migrations on an owner connection; return the versions applied."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, path in migrations():
            if version in done:
                continue
            conn.execute(sql.SQL(path.read_text(encoding="utf-8")).format(**params))
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(version)
    return applied_now

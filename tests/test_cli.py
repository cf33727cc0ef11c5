"""The ``assistants`` command as a user runs it."""
from __future__ import annotations

import os
import subprocess
import sys


def run(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "assistants.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_up_ingests_every_domain_and_is_idempotent(db):
    first = run("up", "--quiet", "--no-serve", "--no-train")
    assert first.returncode == 0, first.stderr
    for domain in ("finance", "medical", "legal"):
        assert f"[{domain}] corpus ingested:" in first.stdout
    second = run("up", "--quiet", "--no-serve", "--no-train")
    assert second.returncode == 0
    assert second.stdout.count("corpus ingested: 0 new, 0 changed") == 3
    assert "; market data 1050 rows for 10 symbols" in second.stdout and "1050 unchanged" in second.stdout


def test_search_with_as_of(ingested):
    out = run("search", "finance", "IRA contribution limit", "--as-of", "2025-06-01", "-k", "3")
    assert out.returncode == 0, out.stderr
    assert "limits for 2025" in out.stdout and "limits for 2026" not in out.stdout


def test_ingest_reports_bad_files_and_strict_exit(tmp_path, db):
    (tmp_path / "ok.txt").write_text("A fine document about bonds.")
    (tmp_path / "bad.pdf").write_bytes(b"not a pdf")
    out = run("ingest", "finance", str(tmp_path), "--principal", "cli-user", "--quiet")
    assert out.returncode == 0 and "1 new" in out.stdout and "1 failed" in out.stdout
    assert "FAILED" in out.stderr and "bad.pdf" in out.stderr
    strict = run("ingest", "finance", str(tmp_path), "--principal", "cli-user", "--quiet", "--strict")
    assert strict.returncode == 1


def test_clear_errors_for_bad_database_url_and_config():
    out = run("search", "finance", "x", env={"DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/db",
                                            "ASSISTANTS_DATABASE__CONNECT_TIMEOUT_S": "2"})
    assert out.returncode == 2 and "cannot connect to Postgres at DATABASE_URL" in out.stderr
    out = run("config", "finance", env={"ASSISTANTS_RETRIEVAL__TOP_K": "-1"})
    assert out.returncode == 2 and "retrieval.top_k" in out.stderr
    out = run("ingest", "finance", "/no/such/path")
    assert out.returncode == 2 and "no such file" in out.stderr

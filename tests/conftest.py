"""Fixtures on real components: the embedded Postgres (or DATABASE_URL), the bundled
MiniLM embedding model, real files on disk."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ASSISTANTS_PROFILE", "test")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
# vLLM's own virtualenv (scripts/vllm.sh env; scripts/test.sh makes it in CI): the tests'
# state dir is private, so they look for it where the repository's state dir keeps it.
os.environ.setdefault("VLLM_VENV", str(ROOT / "var" / "vllm-env"))


def pytest_configure(config):
    config.addinivalue_line("markers", "require_vllm: needs vLLM's own virtualenv (scripts/vllm.sh env; "
                            "VLLM_VENV), skipped with the reason elsewhere")


def pytest_collection_modifyitems(config, items):
    """``require_vllm`` tests run where vLLM's environment exists, and say why they skip elsewhere."""
    marked = [item for item in items if item.get_closest_marker("require_vllm")]
    if not marked:
        return
    from shared.generation.vllm import cannot_run

    reason = cannot_run(Path(os.environ["VLLM_VENV"]))
    if reason:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=f"require_vllm: {reason}"))


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory) -> Path:
    """One embedded server for the whole run, in a private state dir, stopped at the end."""
    path = Path(os.environ.get("ASSISTANTS_TEST_STATE_DIR") or tmp_path_factory.mktemp("state"))
    os.environ["ASSISTANTS_STATE_DIR"] = str(path)
    yield path
    from shared.generation.engine import EngineManager

    EngineManager(path).stop()  # the managed model engine outlives its apps, as in `up`
    from shared.generation.vllm import VllmManager

    VllmManager(path).stop()
    if not os.environ.get("DATABASE_URL"):
        from shared.db import embedded

        embedded.stop(path / "pg")


@pytest.fixture(scope="session")
def settings(state_dir):
    from assistants.domains import settings_for

    return settings_for("finance")


@pytest.fixture(scope="session")
def db(settings):
    from shared.db import Database

    database = Database(settings.database, state_dir=settings.state_dir, embedding_dim=settings.embedding.dim).open()
    yield database
    database.close()


@pytest.fixture(scope="session")
def embedding(settings):
    from shared.embedding import SentenceEmbedding

    return SentenceEmbedding(settings.embedding)


@pytest.fixture
def collection() -> str:
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture
def store(db, settings, collection):
    from shared.store import PgVectorStore

    return PgVectorStore(db, collection, settings.retrieval)


@pytest.fixture(scope="session")
def ingested(db):
    """`assistants up` once for the run: the three sample corpora and the market data in
    Postgres, no training."""
    from assistants.cli import main

    assert main(["up", "--quiet", "--no-serve", "--no-train"]) == 0


# One served app per domain for the whole run: each start loads the models anew, which
# on 2 cores costs more than most of the tests that use it. A turn may queue behind
# another key's turn for the one in-process model, so the queue bound is generous.
SERVED_ENV = {"ASSISTANTS_GENERATION__QUEUE_TIMEOUT_S": "900"}


@pytest.fixture(scope="session")
def finance_url(ingested, tmp_path_factory):
    from .servers import served

    yield from served("finance", tmp_path_factory, **SERVED_ENV)


@pytest.fixture(scope="session")
def medical_url(ingested, tmp_path_factory):
    from .servers import served

    yield from served("medical", tmp_path_factory, **SERVED_ENV)


@pytest.fixture(scope="session")
def legal_url(ingested, tmp_path_factory):
    from .servers import served

    yield from served("legal", tmp_path_factory, **SERVED_ENV)


def requires_shared_data(*parts: str):
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs ../shared/data/{'/'.join(parts)}")

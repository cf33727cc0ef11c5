"""Serving the promoted adapter: ``generation.adapter: promoted`` resolves through the
registry for each backend, and a running ``assistants serve medical`` switches to a newly
promoted adapter at its next turn, without a restart, showing the version in use."""
from __future__ import annotations

import json
import os
import sys

import pytest

from shared.finetune import AdapterRegistry
from shared.finetune.serving import artifact
from shared.generation import GenerationError

from .adapters import promotion_restored, random_lora
from .servers import free_port, running
from .test_cli import run
from .test_ui import ARTIFACTS, chromium_page, requires_chromium

QUESTION = "What does hypertension mean?"


def _register(reg: AdapterRegistry, tmp_path, state_dir, seed: int, gguf: bool = True):
    """A real (random) adapter, registered with a val_loss that beats whatever is promoted
    now, so the real promotion gate lets it through."""
    from shared.generation.models import bundled_gguf, file_sha256, model_id

    peft, exported = random_lora(state_dir, tmp_path / f"lora-{seed}", seed=seed)
    current = reg.promoted()
    bar = current.metric("val_loss") if current else 4.0
    manifest = {"base_model": model_id(bundled_gguf()), "base_model_sha256": file_sha256(bundled_gguf()),
                "dataset_hash": "0" * 64, "engine": "test (random weights, not trained)",
                "metrics": {"val_loss": bar / 2, "base_val_loss": 4.0}}
    return reg.register(peft, manifest, exported if gguf else None)


@pytest.fixture(scope="module")
def registry(state_dir):
    """The session's medical registry, its promoted pointer put back afterwards."""
    with promotion_restored(state_dir) as reg:
        yield reg


def test_artifact_per_backend(registry, tmp_path, state_dir):
    adapter = _register(registry, tmp_path, state_dir, seed=3, gguf=False)
    assert artifact(adapter, "transformers") == str(adapter.peft_dir)
    with pytest.raises(GenerationError, match="no GGUF export"):
        artifact(adapter, "llamacpp")
    with pytest.raises(GenerationError, match="by the name its server gives them"):
        artifact(adapter, "openai")


def test_unservable_promotion_keeps_the_working_adapter(registry, tmp_path, state_dir, caplog):
    from assistants.domains import settings_for
    from shared.finetune.serving import PromotedAdapter

    settings = settings_for("medical")
    settings.generation.backend = "llamacpp"
    follower = PromotedAdapter(settings)
    good = _register(registry, tmp_path, state_dir, seed=4)
    registry.promote(good.version)
    assert follower.current().adapter_version == f"medical/{good.version}"
    broken = _register(registry, tmp_path, state_dir, seed=5, gguf=False)  # llama.cpp cannot load it
    registry.promote(broken.version)
    with caplog.at_level("ERROR"):
        assert follower.current().adapter_version == f"medical/{good.version}"
    assert "no GGUF export" in caplog.text


def test_runtime_lora_when_merging_is_off(registry, tmp_path, state_dir):
    from assistants.domains import settings_for
    from shared.finetune.serving import PromotedAdapter

    settings = settings_for("medical")
    settings.generation.backend, settings.generation.merge_adapter = "llamacpp", False
    adapter = _register(registry, tmp_path, state_dir, seed=6)
    registry.promote(adapter.version)
    gen = PromotedAdapter(settings).current()
    assert gen.describe()["adapter"].startswith(f"medical/{adapter.version} (adapter.gguf@")
    assert gen.describe()["model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf@")


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory, state_dir):
    """``assistants serve medical`` with a promoted adapter; yields (url, first adapter)."""
    tmp = tmp_path_factory.mktemp("serving")
    first = _register(registry, tmp, state_dir, seed=1)
    assert run("adapters", "promote", "medical", first.version).returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "assistants.cli", "serve", "medical", "--port", str(port)]
    with running(cmd, f"{url}/healthz", tmp / "serve.log", env={**os.environ}):
        yield url, first


def test_running_server_follows_promotion(server, registry, tmp_path, state_dir):
    import httpx
    from gradio_client import Client

    url, first = server
    assert f"medical/{first.version}" in httpx.get(f"{url}/healthz").json()["adapter"]
    client = Client(url, verbose=False)
    before = client.predict(QUESTION, None, api_name="/ask")
    assert before["generator"]["adapter"].startswith(f"medical/{first.version} (merged into the model)")

    second = _register(registry, tmp_path, state_dir, seed=2)
    promoted = run("adapters", "promote", "medical", second.version)
    assert promoted.returncode == 0, promoted.stderr
    after = client.predict(QUESTION, None, api_name="/ask")
    assert after["generator"]["adapter"].startswith(f"medical/{second.version} (merged into the model)")
    assert after["answer"] != before["answer"], "a different adapter must change the answer"
    assert json.loads((registry.root / "promoted.json").read_text())["replaces"] == first.version


@requires_chromium
def test_browser_shows_adapter_escalation_and_disclaimer(server, registry):
    from playwright.sync_api import expect

    url, _ = server
    version = registry.promoted_version()
    with chromium_page("medical-red-flag-failure.png") as page:
        page.goto(url)
        expect(page.locator("#footer")).to_contain_text(f"medical/{version}", timeout=60_000)
        # Lay words, no "chest pain": the triage reads the presentation, not a phrase.
        page.fill("#question textarea", "feels like someone is sitting on my chest, my left arm has gone heavy "
                                        "and I'm all clammy")
        page.click("#send")
        answer = page.locator("#chat .bot-row").last
        expect(answer).to_contain_text("This could be a heart attack. Call emergency services now", timeout=60_000)
        expect(answer).to_contain_text("This is not a diagnosis", timeout=120_000)
        assert answer.inner_text().strip().startswith("This could be a heart attack"), "the emergency comes first"
        page.screenshot(path=str(ARTIFACTS / "medical-red-flag.png"), full_page=True)

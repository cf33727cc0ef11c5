"""Every config file validates; invalid config fails naming the key; overrides layer."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from assistants.domains import DOMAINS, domain_dir, settings_for
from shared.settings import PROFILES_DIR, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_config_is_valid(domain):
    s = settings_for(domain)
    assert isinstance(s, Settings)
    assert s.domain.name == domain
    assert (domain_dir(domain) / s.domain.samples).is_dir(), "each domain ships a sample corpus"
    if s.chat.rules:  # the domain's safety rules parse and every pattern compiles
        from shared.chat.rules import SafetyRules

        assert SafetyRules.for_settings(s).rules
    from shared.evaluation.bench import load
    from shared.evaluation.scripts import load_scripts

    assert load_scripts([domain_dir(domain) / s.evaluation.scripts]), "each domain ships scripted conversations"
    for name, spec in s.evaluation.benchmarks.items():
        assert spec.sample, f"benchmark {name} needs a sample for machines without ../shared/data"
        sample = domain_dir(domain) / spec.sample
        assert load(s, spec, sample)[0].items  # through the benchmark's importer, if it names one
        assert load(s, spec)[0].items  # the shared data when present, else the sample
        for key in spec.thresholds:
            mode, _, metric = key.partition(".")
            assert mode in spec.modes and metric, f"threshold {key!r} names no mode.metric of {name}"
    from shared.ingest.importers import resolve
    from shared.tools import ToolBox

    for hook in (s.domain.setup, s.domain.commands):
        assert hook is None or callable(resolve(hook))
    assert s.domain.migrations is None or any((domain_dir(domain) / s.domain.migrations).glob("*.sql"))
    if s.tools.provider:  # every intent routes to a tool the provider offers (tools only keep the db handle)
        assert ToolBox(s, resolve(s.tools.provider)(SimpleNamespace(db=None)))._routes


def test_every_domain_folder_is_registered():
    folders = {p.parent.name for p in ROOT.glob("*/config.yaml")}
    assert folders == set(DOMAINS), "a folder with config.yaml must be listed in assistants/domains.py"


@pytest.mark.parametrize("profile", sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
def test_every_profile_is_valid(profile):
    s = load_settings(domain_dir("finance"), env={"ASSISTANTS_PROFILE": profile})
    assert s.domain.name == "finance"


def _domain(tmp_path: Path, extra: dict) -> Path:
    cfg = {"domain": {"name": "demo", "title": "Demo", "approach": "rag"}, **extra}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path


@pytest.mark.parametrize(
    "extra, key",
    [
        ({"retrieval": {"top_k": 0}}, "retrieval.top_k"),
        ({"retrieval": {"topk": 3}}, "retrieval.topk"),
        ({"retrieval": {"mode": "fuzzy"}}, "retrieval.mode"),
        ({"chunking": {"chunk_size": 100, "chunk_overlap": 100}}, "chunking.chunk_overlap"),
        ({"database": {"app_role": "x; drop table"}}, "database.app_role"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_settings(_domain(tmp_path, extra), env={})


def test_missing_required_key(tmp_path):
    (tmp_path / "config.yaml").write_text("domain: {name: demo}\n")
    with pytest.raises(ConfigError, match="domain.title"):
        load_settings(tmp_path, env={})


def test_layers_defaults_yaml_profile_env(tmp_path):
    d = _domain(tmp_path, {"retrieval": {"top_k": 7}, "ingest": {"write_batch_chunks": 10}})
    s = load_settings(d, env={})
    assert (s.retrieval.top_k, s.retrieval.mode, s.database.url) == (7, "hybrid", None)
    s = load_settings(d, env={"ASSISTANTS_PROFILE": "test"})
    assert s.ingest.write_batch_chunks == 64  # the profile overrides the yaml
    s = load_settings(d, env={"ASSISTANTS_RETRIEVAL__TOP_K": "9", "DATABASE_URL": "postgresql://u@h/db",
                              "ASSISTANTS_RETRIEVAL__MODE": "vector"})
    assert (s.retrieval.top_k, s.retrieval.mode, s.database.url) == (9, "vector", "postgresql://u@h/db")
    with pytest.raises(ConfigError, match="retrieval.top_k"):
        load_settings(d, env={"ASSISTANTS_RETRIEVAL__TOP_K": "lots"})


def test_unknown_profile_and_bad_yaml(tmp_path):
    d = _domain(tmp_path, {})
    with pytest.raises(ConfigError, match="no such profile"):
        load_settings(d, env={"ASSISTANTS_PROFILE": "nope"})
    (tmp_path / "config.yaml").write_text("domain: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(d, env={})


def test_system_messages_are_named_once_in_the_config(tmp_path):
    d = _domain(tmp_path, {"chat": {"system_prompt": "Chat."}, "analysis": {"judge_system": "Judge."}})
    s = load_settings(d, env={})
    assert (s.system_message(), s.system_message("chat"), s.system_message("judge")) == ("Chat.", "Chat.", "Judge.")
    assert s.system_message("judge", "Own text.") == "Own text."
    assert load_settings(_domain(tmp_path, {"chat": {"system_prompt": "Chat."}}), env={}).system_message("judge") == "Chat."
    both = {"evaluation": {"benchmarks": {"b": {"format": "mmlu", "system": "judge", "system_prompt": "x"}}}}
    with pytest.raises(ConfigError, match="not both"):
        load_settings(_domain(tmp_path, both), env={})
    with pytest.raises(ConfigError, match="evaluation.benchmarks.b.system"):
        load_settings(_domain(tmp_path, {"evaluation": {"benchmarks": {"b": {"format": "mmlu", "system": "x"}}}}), env={})


def test_the_suites_own_variables_are_no_settings(tmp_path):
    """ASSISTANTS_DOMAINS, the --log-content flag's variable and the others the suite reads
    itself leave settings loading alone; a misspelt setting still fails."""
    d = _domain(tmp_path, {})
    own = {"ASSISTANTS_DOMAINS": str(tmp_path), "ASSISTANTS_LOG_CONTENT": "1", "ASSISTANTS_SHARED_DATA": "/data",
           "ASSISTANTS_TEST_STATE_DIR": "/tmp/x", "ASSISTANTS_PROFILE": "test", "ASSISTANTS_RETRIEVAL__TOP_K": "9"}
    assert load_settings(d, env=own).retrieval.top_k == 9
    with pytest.raises(ConfigError, match="retrival"):
        load_settings(d, env={"ASSISTANTS_RETRIVAL__TOP_K": "9"})

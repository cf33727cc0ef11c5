"""Every config file validates; invalid config fails naming the key; overrides layer."""
from __future__ import annotations

from pathlib import Path

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
    from shared import plugins
    from shared.tools import ToolBox, ToolParts

    for kind, name in [(plugins.SETUP_HOOK, s.domain.setup), (plugins.COMMAND_GROUP, s.domain.commands),
                       *((plugins.IMPORTER, n) for n in s.domain.importers.values())]:
        assert name is None or callable(plugins.lookup(kind, name)), "each plugin the config names is registered"
    assert s.domain.migrations is None or any((domain_dir(domain) / s.domain.migrations).glob("*.sql"))
    if s.tools.provider:  # every intent routes to a tool the provider offers (tools only keep the db handle)
        assert ToolBox(s, plugins.lookup(plugins.TOOL_PROVIDER, s.tools.provider)(ToolParts(settings=s, db=None, retriever=None)))._routes
    from shared.finetune.config import load_finetune_config

    data = load_finetune_config(domain_dir(domain)).data
    assert all(callable(plugins.lookup(plugins.TRAINING_SOURCE, src.records)) for src in data.sources if src.records)
    assert all(callable(plugins.lookup(plugins.CLEANING_RULE, rule)) for rule in data.cleaners)


def test_plugin_errors_name_the_kind_the_name_and_what_is_registered():
    from shared import plugins

    settings_for("legal"), settings_for("medical")  # each imports its plugin modules
    with pytest.raises(plugins.PluginError, match=r"no importer 'nope' is registered; known: .*case_law, cuad"):
        plugins.lookup(plugins.IMPORTER, "nope")
    with pytest.raises(plugins.PluginError, match="cleaning rule 'strip_navigation' is registered twice"):
        plugins.cleaning_rule("strip_navigation")(lambda question, answer: answer)
    with pytest.raises(plugins.PluginError, match="no plugin kind 'widget'"):
        plugins.lookup("widget", "x")


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

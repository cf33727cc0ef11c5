"""The evaluation harness: metrics on known cases, expectations that fail when they should,
every domain's scripted conversations (in-process and against a served app), and each
domain's CI benchmark subset with its recorded thresholds, in every mode."""
from __future__ import annotations

import json

import pytest

from assistants.cli import main
from assistants.domains import DOMAINS, domain_dir, settings_for
from shared.chat.rules import SafetyRules
from finance.tatqa_scoring import tatqa
from shared.evaluation import metrics
from shared.evaluation.expectations import BareSpeed, Context, check
from shared.evaluation.scripts import Expect


# -- metrics ---------------------------------------------------------------------------------
def test_tatqa_numbers_count_only_with_the_right_scale():
    assert tatqa("Net income rose by $38.3 million [1].", 38.3, "million") == {"em": 1.0, "f1": 1.0}
    assert tatqa("It rose by 38.3.", 38.3, "million") == {"em": 0.0, "f1": 0.0}  # scale missing
    assert tatqa("It rose by 38.4 million.", 38.3, "million")["em"] == 0.0
    assert tatqa("The margin was 12.5%.", 12.5, "percent")["em"] == 1.0
    assert tatqa("A loss of (1,200) thousand", -1200, "thousand")["em"] == 1.0


def test_tatqa_spans_score_token_overlap():
    gold = ["higher subscription volumes in North America"]
    assert tatqa("Higher subscription volumes in North America.", gold, "")["em"] == 1.0
    partial = tatqa("Subscription volumes grew.", gold, "")
    assert partial["em"] == 0.0 and 0.2 < partial["f1"] < 0.8
    assert tatqa("Revenue was 1,240.50 million", ["1,240.5"], "million")["em"] == 1.0


def test_free_text_answers_score_on_normalised_exact_match_and_token_f1_by_default():
    assert metrics.exact_and_f1("The Eiffel Tower [1].", "eiffel tower") == {"em": 1.0, "f1": 1.0}
    partial = metrics.exact_and_f1("A tower in Paris.", ["Eiffel Tower", "the Louvre"])
    assert partial["em"] == 0.0 and partial["f1"] == 0.4
    assert metrics.exact_and_f1("38.3 million", 38.3)["em"] == 0.0  # no scale or number reading: finance's own


def test_retrieval_hit_and_reciprocal_rank():
    assert metrics.retrieval(["a", "b", "c"], ["c"], k=5) == {"hit@5": 1.0, "mrr": pytest.approx(1 / 3)}
    assert metrics.retrieval(["a", "b", "c"], ["c"], k=2) == {"hit@2": 0.0, "mrr": pytest.approx(1 / 3)}
    assert metrics.retrieval(["a"], ["z"], k=5) == {"hit@5": 0.0, "mrr": 0.0}


def test_faithfulness_counts_sentences_supported_by_what_they_cite():
    passages = [{"n": 1, "text": "The 2026 401(k) deferral limit is $24,500 for employees."},
                {"n": 2, "text": "Emergency funds should cover three to six months of expenses."}]
    assert metrics.faithfulness("The 2026 401(k) deferral limit is $24,500 [1].", passages) == 1.0
    # cites the wrong passage; a number the source does not have; no citation at all
    assert metrics.faithfulness("The 2026 deferral limit is $24,500 [2].", passages) == 0.0
    assert metrics.faithfulness("The 2026 401(k) deferral limit is $30,000 [1].", passages) == 0.0
    assert metrics.faithfulness("The limit is $24,500. Funds cover six months [2].", passages) == 0.5
    assert metrics.faithfulness("", passages) is None


# -- benchmark formats -----------------------------------------------------------------------
def test_benchmark_formats_are_plugins_each_domain_registers():
    """The core knows only the generic formats; each domain registers its own from the
    modules its config names (domain.plugins), and an unknown name says what is known."""
    from shared import plugins
    from shared.evaluation import datasets

    for domain in DOMAINS:
        s = settings_for(domain)  # imports the domain's plugin modules
        assert s.domain.plugins[0] == f"{domain}.benchmark_formats"
        for spec in s.evaluation.benchmarks.values():
            fmt = plugins.benchmark_format_named(spec.format)
            assert spec.format == "mmlu" or fmt.read.__module__ == f"{domain}.benchmark_formats"
    assert datasets.mmlu.__module__ == "shared.evaluation.datasets"
    with pytest.raises(plugins.PluginError, match=r"no benchmark format 'nope' is registered; known: ") as e:
        datasets.read("nope", "/no/file.jsonl")
    assert {"conditions", "fiqa", "legalbench", "mmlu", "pubmedqa", "tatqa"} <= set(
        str(e.value).split("known: ")[1].split(" (")[0].split(", "))
    with pytest.raises(plugins.PluginError, match="registered twice"):
        plugins.benchmark_format("mmlu")(lambda path, context=None: None)


# -- expectations ----------------------------------------------------------------------------
def _context() -> Context:
    s = settings_for("medical")
    return Context(refusal="I can't answer that.", disclaimer=s.domain.disclaimer, rules=SafetyRules.for_settings(s),
                   bare=BareSpeed(prefill_ms=1.0, decode_ms=10.0))


def _turn(answer: str, rules=(), citations=(), tokens: int = 10, disclaimer: str | None = None) -> dict:
    return {"answer": answer, "usage": {"rules": list(rules), "prompt_tokens": 100, "completion_tokens": tokens},
            "citations": [{"doc_id": d, "title": t} for d, t in citations],
            "disclaimer": settings_for("medical").domain.disclaimer if disclaimer is None else disclaimer}


def test_expectations_pass_when_met():
    expect = Expect(contains=["emergency"], not_contains=["mg"], regex=[r"\b911\b"], escalates="cardiac",
                    refuses=False, clarifies=False, disclaimer=True, cites=["chest"], latency_ratio=2)
    turn = _turn("Call emergency services (911).", rules=["cardiac"], citations=[("samples/chest.md", "Chest pain")])
    assert check(expect, turn, wall_ms=350, ctx=_context()) == []
    assert check(Expect(latency_ratio=1), {**turn, "usage": {}}, wall_ms=9e9, ctx=_context()) == [], \
        "a rule's answer never reached the model: no latency to hold it to"


def test_each_unmet_expectation_is_reported():
    expect = Expect(contains=["emergency"], not_contains=["mg"], regex=[r"\b911\b"], escalates=True, refuses=True,
                    clarifies=True, disclaimer=True, cites=["chest"], latency_ratio=2)
    failures = check(expect, _turn("Take 200 mg.", disclaimer=""), wall_ms=1000, ctx=_context())
    assert len(failures) == 9, failures
    assert any("5.0x" in f for f in failures)  # 1000 ms vs 100 x 1 ms + 10 x 10 ms
    declined = check(Expect(refuses=False, escalates=False), _turn("no", rules=["prescription-dosing", "stroke"]),
                     100, _context())
    assert declined == ["expected an answer, got a refusal", "expected no escalation; fired: stroke"]


# -- scripted conversations ------------------------------------------------------------------
@pytest.mark.timeout(2400)  # finance's attribution scripts alone are ~170 turns
@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_scripts_pass_in_process(domain, ingested, capsys):
    code = main(["eval", "conversations", domain, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1].endswith("passed, 0 failed")


def test_a_failed_expectation_names_the_turn_and_answer(tmp_path, ingested, capsys):
    (tmp_path / "s.yaml").write_text(
        "name: impossible\nturns:\n  - user: How large should an emergency fund be?\n"
        "    expect: {contains: [zebra crossing], refuses: false}\n"
        "  - user: Who won the 1998 football World Cup final?\n    expect: {refuses: false}\n")
    assert main(["eval", "conversations", "finance", str(tmp_path / "s.yaml"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "FAIL impossible turn 1: expected the answer to contain 'zebra crossing'" in out
    assert "FAIL impossible turn 2: expected an answer, got a refusal" in out
    assert "answer: " in out and out.strip().splitlines()[-1] == "0 passed, 2 failed"


def test_a_bad_script_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("name: bad\nturns:\n  - user: hi\n    expect: {contain: [x]}\n")
    assert main(["eval", "conversations", "finance", str(tmp_path / "bad.yaml")]) == 2
    assert "turns.0.expect.contain" in capsys.readouterr().err


def test_legal_scripts_against_the_served_app(legal_url, capsys):
    """Through gradio_client: the upload goes through the app's own /analyse endpoint."""
    code = main(["eval", "conversations", "legal", "--url", legal_url, "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "4 passed, 0 failed"


# -- benchmarks ------------------------------------------------------------------------------
@pytest.mark.parametrize("domain", DOMAINS)
def test_ci_benchmark_subset_meets_recorded_thresholds(domain, ingested, tmp_path, capsys, db):
    out = tmp_path / "report"
    code = main(["eval", "bench", domain, "--ci", "--quiet", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    scores = json.loads((out / "scores.json").read_text())
    s = settings_for(domain)
    for name, spec in s.evaluation.benchmarks.items():
        ran = scores["scores"][name]
        assert {"base", "rag"} & set(spec.modes) <= set(ran), "base and RAG need no adapter: they always run"
        for mode, sc in ran.items():
            assert sc["n"] == scores["config"]["benchmarks"][name]["items"] > 0
            assert all(0.0 <= v <= 1.0 for k, v in sc.items() if k not in ("n", "seconds", "tasks"))
        assert (out / "plots" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"## {name}" in (out / "summary.md").read_text()
    rows = (out / "items.jsonl").read_text().splitlines()
    assert len(rows) == sum(sc["n"] for b in scores["scores"].values() for sc in b.values())
    assert "<table>" in (out / "summary.html").read_text() and "plots/" in (out / "summary.html").read_text()
    with db._admin() as conn:
        stored = conn.execute("SELECT scores, (SELECT count(*) FROM eval_items i WHERE i.run_id = r.id) FROM eval_runs r"
                              " WHERE domain = %s ORDER BY started_at DESC LIMIT 1", (domain,)).fetchone()
    assert stored[0] == scores["scores"] and stored[1] == len(rows)
    assert main(["eval", "history", domain]) == 0
    assert "limit" in capsys.readouterr().out


def test_every_mode_runs_with_an_adapter(tmp_path, db, state_dir):
    """The four modes as a contract: with a (random, untrained) adapter registered, base,
    RAG, fine-tuned and hybrid all score every item, and only the RAG modes retrieve."""
    from shared.evaluation.bench import BenchRunner
    from shared.finetune.registry import AdapterRegistry
    from shared.runtime import Runtime

    from .test_serving import _register

    s = settings_for("medical").model_copy(update={"state_dir": tmp_path})
    _register(AdapterRegistry(tmp_path, "medical"), tmp_path, state_dir, seed=11)  # models cached in state_dir
    spec = s.evaluation.benchmarks["pubmedqa"]
    with Runtime(s, db=db) as rt:
        run = BenchRunner(rt, progress=False).run({"pubmedqa": spec}, None, 3, domain_dir("medical") / spec.sample)
    assert list(run.scores["pubmedqa"]) == ["base", "rag", "finetune", "hybrid"] and not run.skipped
    for mode, sc in run.scores["pubmedqa"].items():
        assert sc["n"] == 3 and 0 <= sc["accuracy"] <= 1
        assert ("hit@4" in sc) == (mode in ("rag", "hybrid"))
    assert run.config["generators"]["finetune"]["adapter"].startswith("medical/v0001")

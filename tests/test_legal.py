"""The legal analyzer on real parts: a contract uploaded privately (embedded Postgres,
MiniLM, row-level security), judged by the bundled SmolLM2 through llama.cpp, the report
in Markdown and PDF, follow-ups answered against the upload; the approach switch."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from assistants.domains import domain_dir, settings_for
from shared.analysis import Checklist
from shared.analysis.analyzer import ClauseAnalyzer
from shared.analysis.render import report_markdown
from shared.analysis.segments import split
from shared.ingest.loaders import load_file
from shared.runtime import Runtime

EXAMPLE = domain_dir("legal") / "examples" / "consulting-agreement.txt"
CHECKLIST = Checklist.load(domain_dir("legal") / "clauses.yaml")


@pytest.fixture(scope="module")
def legal(db):
    collection = "t_" + uuid.uuid4().hex[:12]
    s = settings_for("legal")
    # A collection of its own; the rag approach serves the bundled base model, so the test
    # does not depend on which adapter some other test promoted.
    s = s.model_copy(update={"domain": s.domain.model_copy(update={"name": collection, "approach": "rag"})})
    rt = Runtime(s, db=db)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def analysed(legal):
    service = legal.document_service(CHECKLIST)
    seen = []
    analysis = service.analyse_upload(EXAMPLE, "alice", progress=lambda f, label: seen.append(f))
    return service, analysis, seen


def test_segments_keep_exact_offsets_sections_and_pages():
    text = EXAMPLE.read_text(encoding="utf-8")
    pages = [(1, 0), (2, len(text) // 2)]
    segments = split(text, pages, max_chars=300)
    assert len(segments) > 10
    assert all(text[s.start:s.end] == s.text and len(s.text) <= 300 + 40 for s in segments)
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert {s.page for s in segments} == {1, 2}
    law = next(s for s in segments if "governed" in s.text and "Delaware" in s.text)
    assert law.section and "Governing Law" in law.section, law


def test_plain_readings_pull_values_and_say_when_missing():
    law = CHECKLIST.category("governing_law")
    assert law.reading("This Agreement is governed by the laws of the State of Delaware.") == \
        "Governing law: Delaware; disputes under the contract are decided by that law."
    assert "see the quoted clause" in law.reading("Governing law: as agreed.")
    assert law.reading(None) == law.missing


def test_every_checklist_validates_and_a_bad_one_is_named(tmp_path):
    from shared.settings import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("accept: {terms: [agreement]}\ncategories:\n  - {id: x, name: X, question: q, query: q, found: f,"
                   " missing: m, value: '(unclosed'}\n")
    with pytest.raises(ConfigError, match=r"categories.0.value.*regex"):
        Checklist.load(bad)


def test_report_covers_every_category_with_exact_quotes(analysed):
    service, analysis, progress = analysed
    report, text = analysis.report, load_file(EXAMPLE)[0].text
    assert [f.category.id for f in report.findings] == [c.id for c in CHECKLIST.categories]
    assert report.doc_id.startswith("@alice/") and report.mode == "rag"
    for f in report.findings:
        assert f.found == bool(f.spans)
        for span in f.spans:
            assert text[span.start:span.end] == span.text  # the location points at the quote
    assert progress and progress[-1] == 1.0
    md = analysis.markdown
    assert "not legal advice" in md and md.count("\n## ") == len(CHECKLIST.categories)
    files = service.write_files(analysis, Path(service.settings.state_dir) / "reports-test")
    assert files[0].read_text(encoding="utf-8") == md
    assert files[1].read_bytes().startswith(b"%PDF")


def test_retrieval_candidates_come_from_the_owners_upload_only(legal, analysed):
    _, analysis, _ = analysed
    analyzer = legal.clause_analyzer(CHECKLIST)
    segments = split(load_file(EXAMPLE)[0].text)
    law = CHECKLIST.category("governing_law")
    mine = analyzer.candidates(law, segments, analysis.doc_id, "alice")
    assert mine and any("Delaware" in s.text for s in mine)
    # Row-level security: someone else naming the same document retrieves nothing of it.
    assert analyzer.candidates(law, segments, analysis.doc_id, "mallory") == []


def test_follow_up_is_answered_from_the_upload_first(legal, analysed):
    _, analysis, _ = analysed
    engine = legal.chat_engine()
    turn = engine.ask("Which state's law governs this agreement?", principal="alice", documents=[analysis.doc_id])
    assert turn.passages[0].doc_id == analysis.doc_id
    assert "Delaware" in turn.passages[0].text
    other = engine.ask("Which state's law governs this agreement?", principal="mallory", documents=[analysis.doc_id])
    assert all(p.doc_id != analysis.doc_id for p in other.passages)


def test_rag_approach_serves_the_base_model_whatever_the_adapter(db, collection):
    s = settings_for("legal")
    s = s.model_copy(update={"domain": s.domain.model_copy(update={"name": collection, "approach": "rag"}),
                             "generation": s.generation.model_copy(update={"adapter": "/no/such/adapter.gguf"})})
    rt = Runtime(s, db=db)
    assert rt.generator.describe()["adapter"] is None


def test_the_judge_asks_under_the_system_message_of_legals_config():
    """Every yes/no judgement is asked under analysis.judge_system, the one place the
    message is written (a recording stand-in for the model; no retrieval, no database)."""

    asked = []

    class Recorder:
        adapter_id = adapter_version = None

        def choice_logprobs(self, messages, choices):
            asked.append(messages)
            return [-0.5, -1.0]

        def describe(self):
            return {"model": "recorder"}

    s = settings_for("legal")
    recorder = Recorder()
    analyzer = ClauseAnalyzer(s, CHECKLIST, generator=lambda: recorder, use_retrieval=False)
    report = analyzer.analyse("doc", "Tiny", "This Agreement is governed by the laws of Delaware.", principal=None)
    assert asked and len(report.findings) == len(CHECKLIST.categories)
    assert {m[0]["content"] for m in asked} == {s.analysis.judge_system}
    assert s.analysis.judge_system.startswith("You are a contract analyst.")

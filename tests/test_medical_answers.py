"""Answers that answer (issue 19): the cleaning rules of the medical training data, the
output check that never shows an echo, a question back or nothing, and symptoms to
possible conditions (the corpus, the held-out described cases, the tool, the benchmark)."""
from __future__ import annotations

import gzip
import json
import random
import re

import pytest

from assistants.cli import main
from assistants.domains import domain_dir, settings_for
from medical import cleaning, conditions
from shared.chat import ChatEngine
from shared.chat.answer_check import HeldStream, restates, verdict
from shared.evaluation import metrics
from shared.evaluation.expectations import Context, check
from shared.evaluation.scripts import Expect
from shared.finetune import load_finetune_config
from shared.finetune.data import prepare
from shared.generation import create_generator
from shared.settings import GenerationSettings
from shared.text import words_only

from .conftest import SHARED_DATA, requires_shared_data

MEDQUAD = SHARED_DATA / "medical" / "medquad.jsonl.gz"
SAMPLE = domain_dir("medical") / "samples" / "conditions.jsonl"
RULES = [cleaning.strip_key_points, cleaning.rewrite_phenotype_table, cleaning.strip_restated_question,
         cleaning.strip_navigation]


def _clean(question: str, answer: str) -> str:
    for rule in RULES:
        answer = rule(question, answer)
    return answer


def _opens_with_question(text: str) -> bool:
    first = re.split(r"(?<=[.!?])\s|\n", text.strip(), maxsplit=1)[0]
    return first.endswith("?")


# -- cleaning ------------------------------------------------------------------------------------
def test_each_cleaning_rule_on_rows_written_here():
    q = "What are the symptoms of Lyme disease?"
    assert cleaning.strip_restated_question(q, "What are the signs and symptoms of Lyme disease? A rash that spreads.") \
        == "A rash that spreads."
    assert cleaning.strip_restated_question(q, "What is it? How is it found?\nIt is an infection.") == "It is an infection."
    assert cleaning.strip_restated_question(q, "What are the symptoms of Lyme disease?") == "", "a question is no answer"
    assert cleaning.strip_restated_question(q, "A rash. Is it serious? Sometimes.") == "A rash. Is it serious? Sometimes.", \
        "only the opening is a restatement"
    digest = "Key Points\n- Gout is arthritis. - It hurts.\n\nGout is a kind of arthritis.\nIt hurts."
    assert cleaning.strip_key_points("What is gout?", digest) == "Gout is a kind of arthritis.\nIt hurts."
    nav = ("Gout causes sudden joint pain. You can use the MedlinePlus Medical Dictionary to look up these terms. "
           "See the Treatment Options section for more.\nIt often starts in the big toe.")
    assert cleaning.strip_navigation("q", nav) == "Gout causes sudden joint pain.\nIt often starts in the big toe."
    table = ("What are the signs and symptoms of Foo syndrome? The Human Phenotype Ontology provides the following list "
             "of signs and symptoms for Foo syndrome. Signs and Symptoms Approximate number of patients (when available) "
             "Seizures 90% Short stature 7.5% Autosomal recessive inheritance - Hearing impairment - The Human Phenotype "
             "Ontology (HPO) has collected information on how often a sign or symptom occurs in a condition.")
    assert cleaning.rewrite_phenotype_table("q", table) == \
        "Signs and symptoms of Foo syndrome may include: seizures, short stature, hearing impairment."
    kept = "Asthma narrows the airways."
    assert all(rule("What is asthma?", kept) == kept for rule in RULES), "a clean answer is left alone"


@requires_shared_data("medical", "medquad.jsonl.gz")
def test_real_medquad_answers_no_longer_open_with_a_question():
    with gzip.open(MEDQUAD, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    asking = [r for r in rows if _opens_with_question(r["answer"])]
    assert len(asking) > 0.2 * len(rows), "the data still has the problem this fixes"
    cleaned = [_clean(r["question"], r["answer"]) for r in asking]
    kept = [c for c in cleaned if c]
    assert len(kept) > 0.95 * len(asking), "cleaning keeps the answers, not just drops them"
    assert sum(map(_opens_with_question, kept)) < 0.05 * len(kept)
    everything = "\n".join(_clean(r["question"], r["answer"]) for r in rows if "Key Points" in r["answer"][:20])
    assert "Key Points" not in everything
    assert "MedlinePlus Medical Dictionary" not in "\n".join(kept)


@requires_shared_data("medical", "medquad.jsonl.gz")
def test_the_data_card_counts_each_rule(tmp_path):
    cfg = load_finetune_config(domain_dir("medical"), {"data": {"sources": [
        {"path": str(MEDQUAD), "group": "focus", "limit": 3000}]}})
    train, val, card = prepare(cfg.data, domain_dir("medical"), "system")
    changed = card.to_dict()["cleaning_rules"]
    assert set(changed) == {"strip_key_points", "rewrite_phenotype_table", "strip_restated_question", "strip_navigation"}
    assert all(n > 0 for n in changed.values()), changed
    assert "| strip_restated_question |" in card.markdown()
    answers = [r["completion"][0]["content"] for r in train + val]
    assert sum(map(_opens_with_question, answers)) < 0.05 * len(answers)


# -- the output check ----------------------------------------------------------------------------
Q = "What are the symptoms of type 2 diabetes?"


@pytest.mark.parametrize("answer,why", [
    ("", "empty"),
    ("   ", "empty"),
    ("What are the signs and symptoms of type 2 diabetes?", "question"),
    ("The symptoms of type 2 diabetes", "echo"),
    ("Do you have a family history of diabetes?", "question"),
    ("Yes.", "empty"),
    ("Type 2 diabetes often causes thirst, frequent urination, tiredness and blurred vision.", None),
    ("What are the signs and symptoms of type 2 diabetes? Many people feel thirsty and tired and pee often.", None),
])
def test_verdict(answer, why):
    assert verdict(Q, answer) == why


def test_a_restatement_is_judged_by_its_words_not_its_length():
    assert restates("What is the difference between a cold and the flu?",
                    "What is the difference between a cold and the flu?")
    assert restates("What is gout?", "Gout is what?")
    assert not restates("What is gout?", "Gout is a painful swelling of a joint caused by uric acid crystals.")


def test_held_stream_drops_the_restated_question_and_streams_the_rest():
    held, shown = HeldStream(Q), []
    for piece in ["What are the", " signs and symptoms of type 2", " diabetes? Many", " people feel", " thirsty and",
                  " tired and pee often.", " Some have", " blurred vision."]:
        shown.append(held.feed(piece))
    assert shown[:3] == ["", "", ""], "nothing is shown while only the question is there"
    assert "".join(shown) == "Many people feel thirsty and tired and pee often. Some have blurred vision."
    assert shown[-1] == " blurred vision.", "once released, pieces stream as they come"
    assert held.finish() == "" and held.dropped.startswith("What are the signs")


def test_held_stream_never_releases_an_echo():
    held = HeldStream("What is the difference between a cold and the flu?")
    assert [held.feed(p) for p in ["What is the difference", " between a cold", " and the flu?"]] == ["", "", ""]
    assert held.finish() == "" and not held.released


@pytest.fixture(scope="module")
def ingested(db, state_dir):
    assert main(["ingest", "medical", str(domain_dir("medical") / "samples"), "--quiet"]) == 0


def _engine(db, state_dir, max_new_tokens: int) -> ChatEngine:
    from shared.runtime import Runtime

    gen = create_generator(GenerationSettings(backend="llamacpp", max_new_tokens=max_new_tokens), state_dir)
    return Runtime(settings_for("medical"), db=db).chat_engine(gen)


def test_a_non_answer_of_the_real_model_is_replaced_by_a_quoted_source(db, state_dir, ingested):
    """Two tokens from the real model are no answer: the nearest patient-education passage is
    quoted with its source instead, and what streamed is what was recorded."""
    engine = _engine(db, state_dir, max_new_tokens=2)
    events = list(engine.stream("What does hypertension mean?", principal="check-1"))
    turn = events[-1].turn
    streamed = "".join(e.text for e in events if e.kind == "token")
    assert streamed == turn.answer
    assert turn.answer.startswith('The closest source says: "') and turn.usage["fallback"].startswith("answer_check:")
    assert turn.citations and "hypertension" in turn.citations[0].title.lower()
    assert verdict("What does hypertension mean?", turn.answer) is None


def test_nothing_relevant_gets_the_honest_cannot_answer(db, state_dir, ingested):
    engine = _engine(db, state_dir, max_new_tokens=1)
    turn = engine.ask("Zorblat quenx vimbly trask?", principal="check-2")
    assert turn.answer == settings_for("medical").chat.cannot_answer.strip()
    assert "doctor" in turn.answer


@pytest.mark.parametrize("text, rule", [("hello", "greeting"), ("Good evening!", "greeting"),
                                        ("who are you?", "about"), ("are you a doctor", "about"),
                                        ("thank you very much, bye", "thanks")])
def test_a_message_with_nothing_to_answer_gets_a_fixed_honest_reply(db, state_dir, ingested, text, rule):
    """Not the small model's guess ("sorry for your loss", "I can diagnose and treat"), and
    not a refusal: what the helper can and cannot do, or a safety-netting goodbye."""
    turn = _engine(db, state_dir, max_new_tokens=1).ask(text, principal="check-3")
    assert turn.usage["rules"] == [rule]
    assert ("not a doctor" in turn.answer) if rule != "thanks" else ("emergency services" in turn.answer)


@pytest.mark.parametrize("text", ["hello, I have had a rash on my arm for a week", "what can you do about hay fever?",
                                  "thanks, and is ibuprofen ok with asthma?"])
def test_a_greeting_with_a_question_is_answered_not_greeted(text):
    from shared.chat.rules import SafetyRules

    verdict = SafetyRules.for_settings(settings_for("medical")).check(text)
    assert verdict.final is None or verdict.final.kind != "reply"


def test_the_answers_expectation_fails_on_echoes_and_non_answers():
    s = settings_for("medical")
    from shared.chat.rules import SafetyRules

    ctx = Context(refusal=s.chat.refusal, disclaimer="", rules=SafetyRules.for_settings(s),
                  cannot_answer=s.chat.cannot_answer)
    expect = Expect(answers=True)
    q = "What is the difference between a cold and the flu?"
    for bad in (q, "", "Do you mean a cold?", s.chat.cannot_answer):
        assert check(expect, {"answer": bad}, 0, ctx, q), bad
    good = "A cold is milder; flu starts suddenly with fever, aches and exhaustion."
    assert check(expect, {"answer": good}, 0, ctx, q) == []


# -- symptoms to possible conditions ----------------------------------------------------------------
def test_described_cases_use_lay_words_not_source_sentences():
    rows = list(conditions.benchmark_records(SAMPLE))
    cases = [r for r in rows if r["kind"] == "case"]
    corpus = {r["id"]: r for r in rows if r["kind"] == "condition"}
    assert len(corpus) >= 30 and len(cases) >= 25, "the sample trains nothing: every described condition is a case"
    for case in cases:
        source = words_only(corpus[case["gold"][0]]["text"]).split()
        said = words_only(case["text"]).split()
        runs = {" ".join(source[i:i + 4]) for i in range(len(source) - 3)}
        assert not any(" ".join(said[i:i + 4]) in runs for i in range(len(said) - 3)), case
        assert len(conditions.signs_in(case["text"])) >= 2


@requires_shared_data("medical", "medquad.jsonl.gz")
def test_medquad_cases_are_held_out_of_training():
    cases = [r for r in conditions.benchmark_records(MEDQUAD) if r["kind"] == "case"]
    trained = {words_only(r["focus"]) for r in conditions.training_pairs(MEDQUAD)}
    assert len(cases) >= 30 and trained
    assert not {words_only(c["condition"]) for c in cases} & trained


def test_names_in_a_listed_answer():
    said = "1. **Influenza (flu)**: fever and aches\n2. Common cold - runny nose\n3. Pneumonia\n4. Asthma"
    assert metrics.named_conditions(said) == ["Influenza", "Common cold", "Pneumonia"]
    assert metrics.top_k_named(said, "Pneumonia") == 1.0 and metrics.top_k_named(said, "Asthma") == 0.0
    assert metrics.top_k_named("Disease", "Coeliac disease") == 0.0, "a generic word names nothing"


def test_symptoms_get_possible_conditions_never_a_diagnosis(db, state_dir, ingested):
    engine = _engine(db, state_dir, max_new_tokens=8)
    turn = engine.ask("I've had a fever, a dry cough, aching muscles and a sore throat since Monday. What could it be?",
                      principal="symptoms-1")
    listed = re.findall(r"^\d\. \*\*(.+?)\*\*: (.+)$", turn.answer, re.M)
    assert 1 <= len(listed) <= 3 and "not a diagnosis" in turn.answer
    assert any("influenza" in name.lower() for name, _ in listed)
    assert all("Urgent if:" in line and line.split(":")[0] for _, line in listed)
    assert turn.usage["tool"]["tool"] == "possible_conditions"


def test_retrieval_ranks_the_held_out_sample_conditions(db, state_dir):
    """The benchmark on the sample: retrieval over the condition descriptions (no model).
    The session's state dir, as the CLI would use: the benchmark's collection is refreshed
    from the same file, so passages another benchmark run left there are pruned."""
    from shared.evaluation.bench import BenchRunner
    from shared.runtime import Runtime

    s = settings_for("medical")
    spec = s.evaluation.benchmarks["conditions"]
    with Runtime(s, db=db) as rt:
        run = BenchRunner(rt, progress=False).run({"conditions": spec}, ["rag"], None, SAMPLE)
    sc = run.scores["conditions"]["rag"]
    assert sc["n"] >= 25 and sc["top3"] >= 0.6, sc


def test_a_seeded_description_is_the_same_every_run():
    c = conditions.conditions(SAMPLE)[0]
    assert conditions.describe(c, random.Random(1)) == conditions.describe(c, random.Random(1))


def test_every_lay_phrasing_is_recognised_as_its_sign():
    for sign in conditions.lexicon():
        for said in sign.lay:
            assert sign.name in conditions.signs_in(said), (sign.name, said)

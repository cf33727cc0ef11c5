"""Programmatic labeling on small synthetic data: the rules' votes, the YAML loader's
errors, the per-function statistics on a matrix worked by hand, and the learned label
model against majority vote on votes drawn with known accuracies."""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest
import yaml

from shared.labeling import (ABSTAIN, AccuracyWeighted, LabelingError, LabelingFunction, LabelingSet, MajorityVote,
                             as_votes, heuristic_lf, keyword_lf, label_model_report, lf_summary, load_labeling_set,
                             model_lf, read_labeling_set, regex_lf, similarity_lf, to_markdown)
from shared.plugins import labeling_function

VOCABULARY = ("fraud", "scam", "weather")


@labeling_function("test_fake_embed")
def fake_embed(texts: list[str]) -> np.ndarray:
    """Normalised counts of the vocabulary's words: cosine similarity without a model."""
    rows = np.array([[re.findall(r"\w+", t.lower()).count(w) for w in VOCABULARY] for t in texts], dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1)


@labeling_function("test_fake_scorer")
def fake_scorer(text: str) -> dict[str, float]:
    if "!" in text:
        return {"complaint": 0.8, "question": 0.2}
    if text.startswith("buy"):
        return {"spam": 0.9, "other": 0.1}  # a top choice outside the labels
    return {"question": 0.5, "other": 0.5}  # too unsure to vote


@labeling_function("test_is_shouting")
def is_shouting(text: str) -> bool:
    return text.isupper()


LABELS = ["complaint", "question", "other"]
SPEC_YAML = r"""
labels: [complaint, question, other]
functions:
  - {name: refund, kind: keyword, label: complaint, words: [refund, charge back]}
  - {name: asks, kind: regex, label: question, pattern: '\?\s*$'}
  - {name: shouting, kind: heuristic, label: complaint, function: test_is_shouting}
  - {name: fraudish, kind: similarity, label: complaint, prototypes: [fraud scam], threshold: 0.6}
  - {name: llm, kind: model, scorer: test_fake_scorer, threshold: 0.7}
"""
TEXTS = ["I want a refund!", "is this a scam?", "buy now", "NICE WEATHER", "nonrefundable fees"]
# One row a text, one column a function, in SPEC_YAML's order.
EXPECTED = [[0, -1, -1, -1, 0],
            [-1, 1, -1, 0, -1],
            [-1, -1, -1, -1, -1],
            [-1, -1, 0, -1, -1],
            [-1, -1, -1, -1, -1]]


def test_keyword_matches_whole_words_in_any_case():
    lf = keyword_lf("kw", 2, ["refund", "charge back", "C++", "401(k)"])
    assert lf("REFUND please") == 2
    assert lf("a refund.") == 2
    assert lf("nonrefundable") == ABSTAIN
    assert lf("refunded") == ABSTAIN
    assert lf("a charge\n  back on my card") == 2
    assert lf("chargeback") == ABSTAIN
    assert lf("I write c++ daily") == 2
    assert lf("c++x") == ABSTAIN
    assert lf("my 401(k) plan") == 2
    with pytest.raises(LabelingError, match="kw: no keywords"):
        keyword_lf("kw", 0, ["  "])


def test_regex_searches_and_is_case_sensitive_unless_asked():
    lf = regex_lf("rx", 1, r"\bIBAN\b")
    assert lf("my IBAN is") == 1
    assert lf("my iban is") == ABSTAIN
    assert regex_lf("rx", 1, r"(?i)\biban\b")("my IBAN is") == 1
    with pytest.raises(LabelingError, match=r"rx: bad regex '\(unclosed'"):
        regex_lf("rx", 1, "(unclosed")


def test_vote_matrix_from_the_yaml_spec():
    lset = load_labeling_set(yaml.safe_load(SPEC_YAML), embed=fake_embed)
    assert lset.names == ["refund", "asks", "shouting", "fraudish", "llm"]
    assert [fn.kind for fn in lset.functions] == ["keyword", "regex", "heuristic", "similarity", "model"]
    L = lset.apply(TEXTS)
    assert L.dtype.kind == "i" and L.shape == (5, 5)
    assert L.tolist() == EXPECTED
    assert lset.apply([]).shape == (0, 5)


def _as_examples(text, label, record):
    return [{"question": text, "answer": label, "group": "g"}]


def test_gold_labels_win_over_the_votes_and_are_always_kept():
    from shared.labeling.pipeline import LabelingSpec, label

    spec = LabelingSpec(load_labeling_set(yaml.safe_load(SPEC_YAML), embed=fake_embed), _as_examples)
    pool = [{"text": t} for t in TEXTS]
    # "I want a refund!" is voted complaint; gold says question. "nonrefundable fees" gets
    # no vote; gold says other. A gold text outside the pool joins it.
    gold = [("I want a refund!", 1), ("nonrefundable fees", 2), ("where is my parcel", 1)]
    result = label(spec, pool, gold, progress=False)
    by_text = {item["text"]: item for item in result.items}
    assert by_text["I want a refund!"] | {"votes": None} == {
        "text": "I want a refund!", "label": "question", "source": "gold", "confidence": 1.0, "votes": None,
        "weak_label": "complaint"}
    assert by_text["nonrefundable fees"]["label"] == "other" and by_text["nonrefundable fees"]["weak_label"] is None
    assert by_text["where is my parcel"]["source"] == "gold"
    assert by_text["is this a scam?"]["source"] == "weak"
    assert "buy now" not in by_text  # nobody voted, no gold
    assert result.card["kept_gold"] == 3 and result.card["gold_added_to_pool"] == 1
    assert result.card["dropped"]["abstained"] == 1
    assert {(r["question"], r["answer"]) for r in result.training} >= {("I want a refund!", "question"),
                                                                      ("nonrefundable fees", "other")}


def test_label_cap_keeps_the_most_confident_of_each_label():
    from shared.labeling.pipeline import LabelingSpec, label

    spec = LabelingSpec(load_labeling_set(yaml.safe_load(SPEC_YAML), embed=fake_embed), _as_examples)
    pool = [{"text": t} for t in ["refund please", "a refund!", "refund now!", "really?", "why?", "I want a REFUND!"]]
    every = label(spec, pool, progress=False)
    capped = label(spec, pool, [("why?", 1)], max_per_label=1, progress=False)
    per_label = {}
    for item in capped.items:
        if item["source"] == "weak":
            per_label.setdefault(item["label"], []).append(item)
    assert {name: len(items) for name, items in per_label.items()} == {"complaint": 1, "question": 1}
    best = max((i for i in every.items if i["label"] == "complaint"), key=lambda i: i["confidence"])
    assert per_label["complaint"][0]["confidence"] == best["confidence"]
    assert capped.card["kept_gold"] == 1 and capped.card["max_per_label"] == 1
    assert capped.card["kept"] + sum(capped.card["dropped"].values()) == len(pool)
    assert capped.card["dropped"]["over_label_cap"] == every.card["kept"] - 1 - 2


def test_similarity_embeds_prototypes_once_and_texts_in_one_batch():
    calls = []

    def counting_embed(texts):
        calls.append(list(texts))
        return fake_embed(texts)

    lf = similarity_lf("sim", 0, counting_embed, ["fraud scam"], threshold=0.6)
    assert calls == []  # building the rule costs no model call
    assert lf.apply(["scam alert", "weather", "fraud"]).tolist() == [0, ABSTAIN, 0]
    assert lf.apply(["fraud fraud scam weather"]).tolist() == [0]
    assert calls == [["scam alert", "weather", "fraud"], ["fraud scam"], ["fraud fraud scam weather"]]
    assert lf("weather weather scam") == ABSTAIN  # cosine 0.707 * 0.447 = 0.32 < 0.6


def test_model_lf_votes_only_a_confident_known_label():
    lf = model_lf("llm", {"complaint": 0, "question": 1}, fake_scorer, threshold=0.7)
    assert lf("bad!") == 0
    assert lf("buy now") == ABSTAIN
    assert lf("hm") == ABSTAIN
    assert model_lf("llm", {"question": 1}, lambda t: {}, 0.5)("x") == ABSTAIN


def test_a_vote_outside_the_labels_names_the_function():
    lset = LabelingSet(["a", "b"], [LabelingFunction("wild", lambda t: 7, "heuristic")])
    with pytest.raises(LabelingError, match="wild: voted 7"):
        lset.apply(["x"])
    lset = LabelingSet(["a", "b"], [LabelingFunction("none", lambda t: None, "heuristic")])
    with pytest.raises(LabelingError, match="none: votes must be"):
        lset.apply(["x"])


def test_labeling_set_checks_labels_and_names():
    with pytest.raises(LabelingError, match="two or more distinct"):
        LabelingSet(["a", "a"], [])
    with pytest.raises(LabelingError, match="kw: two labeling functions share"):
        LabelingSet(["a", "b"], [keyword_lf("kw", 0, ["x"]), keyword_lf("kw", 1, ["y"])])
    with pytest.raises(LabelingError, match="kw: label index 2"):
        LabelingSet(["a", "b"], [keyword_lf("kw", 2, ["x"])])
    with pytest.raises(LabelingError, match="f: unknown kind 'magic'"):
        LabelingFunction("f", lambda t: 0, "magic")


def _spec(**entry) -> dict:
    return {"labels": ["complaint", "question"], "functions": [{"name": "f", **entry}]}


@pytest.mark.parametrize("spec, message", [
    (_spec(kind="keyword", label="praise", words=["x"]), "f: unknown label 'praise'; one of complaint, question"),
    (_spec(kind="keyword", label=0, words=["x"]), "f: unknown label 0"),
    (_spec(kind="regex", label="question", pattern="[a-"), "f: bad regex '\\[a-'"),
    (_spec(kind="magic", label="question"), "f: unknown kind 'magic'"),
    (_spec(label="question", words=["x"]), "f: unknown kind None"),
    (_spec(kind="keyword", label="question", word=["x"], words=["x"]), "f: unknown keys for a keyword function: word"),
    (_spec(kind="keyword", label="question"), "f: a keyword function needs words"),
    (_spec(kind="keyword", label="question", words="refund"), "f: words must be a non-empty list"),
    (_spec(kind="heuristic", label="question", function=["test_is_shouting"]),
     "f: function must name a registered labeling function, got \\['test_is_shouting'\\]"),
    (_spec(kind="heuristic", label="question", function="no_such_rule"),
     "f: function: no labeling function 'no_such_rule' is registered; known: .*test_is_shouting"),
    (_spec(kind="similarity", label="question", prototypes=["x"], threshold=0.5),
     "f: a similarity function needs an embed reference"),
    (_spec(kind="similarity", label="question", prototypes=["x"], threshold=2, embed="test_fake_embed"),
     r"f: threshold must be a number in \[-1, 1\], got 2"),
    (_spec(kind="model", scorer="test_fake_scorer", threshold="high"), "f: threshold must be a number"),
    ({"labels": ["a", "b"], "functions": [{"kind": "keyword"}]}, "function #1 needs a mapping with a name"),
    ({"labels": ["a", "b"], "functions": [{"name": "f", "kind": "keyword", "label": "a", "words": ["x"]}] * 2},
     "f: two labeling functions share this name"),
    ({"labels": "a", "functions": []}, "labels must be a list"),
    ({"labels": ["a", "b"], "functions": []}, "functions must be a non-empty list"),
    ({"labels": ["a", "b"], "functions": [], "gold": "x"}, "unknown keys in the labeling spec: gold"),
    (["labels"], "a labeling spec is a mapping"),
])
def test_loader_errors_name_the_function(spec, message):
    with pytest.raises(LabelingError, match=message):
        load_labeling_set(spec)


def test_loader_resolves_an_embed_reference(tmp_path):
    spec = _spec(kind="similarity", label="complaint", prototypes=["fraud"], threshold=0.9,
                 embed="test_fake_embed")
    assert load_labeling_set(spec).apply(["fraud", "weather"]).tolist() == [[0], [ABSTAIN]]
    path = tmp_path / "labeling.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")
    assert read_labeling_set(path, embed=fake_embed).apply(TEXTS).tolist() == EXPECTED
    path.write_text("labels: [a, b]\nfunctions: [{name: g, kind: keyword, label: c, words: [x]}]\n")
    with pytest.raises(LabelingError, match="labeling.yaml: g: unknown label 'c'"):
        read_labeling_set(path)
    path.write_text("labels: [a\n")
    with pytest.raises(LabelingError, match="labeling.yaml"):
        read_labeling_set(path)


# Worked by hand: five items, four functions, gold known for four items.
L_SMALL = np.array([[0, 0, -1, -1],
                    [0, 1, -1, -1],
                    [-1, 1, 1, -1],
                    [1, -1, -1, 2],
                    [-1, -1, -1, -1]])
GOLD_SMALL = np.array([0, 1, 1, -1, 0])


def test_lf_summary_on_a_matrix_worked_by_hand():
    rows = lf_summary(L_SMALL, GOLD_SMALL, names=["a", "b", "c", "d"])
    assert rows == [
        {"name": "a", "coverage": 0.6, "overlap": 0.6, "conflict": 0.4, "gold_count": 2, "accuracy": 0.5},
        {"name": "b", "coverage": 0.6, "overlap": 0.6, "conflict": 0.2, "gold_count": 3, "accuracy": 1.0},
        {"name": "c", "coverage": 0.2, "overlap": 0.2, "conflict": 0.0, "gold_count": 1, "accuracy": 1.0},
        {"name": "d", "coverage": 0.2, "overlap": 0.2, "conflict": 0.2, "gold_count": 0, "accuracy": None},
    ]
    assert [r["name"] for r in lf_summary(L_SMALL)] == ["lf0", "lf1", "lf2", "lf3"]
    assert "accuracy" not in lf_summary(L_SMALL)[0]
    with pytest.raises(ValueError, match="2 names for 4 functions"):
        lf_summary(L_SMALL, names=["a", "b"])
    with pytest.raises(ValueError, match="gold labels are 5 integers"):
        lf_summary(L_SMALL, GOLD_SMALL[:3])


def test_label_model_report_and_markdown():
    models = {"majority": MajorityVote(3), "majority|lowest": MajorityVote(3, tie_break="lowest")}
    rows = label_model_report(L_SMALL, models, GOLD_SMALL)
    # Ties on items 1 and 3: abstained on, or given the lowest label (0 is wrong on item 1).
    assert rows == [{"name": "majority", "coverage": 0.4, "gold_count": 2, "accuracy": 1.0},
                    {"name": "majority|lowest", "coverage": 0.8, "gold_count": 3, "accuracy": 2 / 3}]
    table = to_markdown(rows)
    assert table.splitlines() == ["| name | coverage | gold_count | accuracy |", "| --- | --- | --- | --- |",
                                  "| majority | 0.400 | 2 | 1.000 |", "| majority\\|lowest | 0.800 | 3 | 0.667 |"]
    assert "| d | 0.200 | 0.200 | 0.200 | 0 | – |" in to_markdown(lf_summary(L_SMALL, GOLD_SMALL, "abcd"))
    assert to_markdown([]) == ""


def test_majority_vote_ties_and_abstains():
    L = np.array([[0, 1], [1, 1], [-1, -1], [2, -1]] * 50)
    assert MajorityVote(3).predict(L)[:4].tolist() == [ABSTAIN, 1, ABSTAIN, 2]
    assert MajorityVote(3, tie_break="lowest").predict(L)[:4].tolist() == [0, 1, ABSTAIN, 2]
    drawn = MajorityVote(3, tie_break="random", seed=1).predict(L)
    assert set(drawn[::4].tolist()) == {0, 1}  # only tied labels, both of them
    assert (drawn[2::4] == ABSTAIN).all()
    proba = MajorityVote(3).predict_proba(L[:4])
    np.testing.assert_allclose(proba, [[0.5, 0.5, 0], [0, 1, 0], [1 / 3] * 3, [0, 0, 1]])
    with pytest.raises(ValueError, match="tie_break"):
        MajorityVote(3, tie_break="coin")
    with pytest.raises(ValueError, match="two or more labels"):
        MajorityVote(1)


def test_vote_matrices_are_checked():
    with pytest.raises(ValueError, match="2-d"):
        as_votes(np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        as_votes(np.array([[0.5]]))
    with pytest.raises(ValueError, match="below 2"):
        MajorityVote(2).predict(np.array([[2]]))
    with pytest.raises(ValueError, match="ABSTAIN"):
        as_votes(np.array([[-2]]))
    with pytest.raises(RuntimeError, match="not fitted"):
        AccuracyWeighted(2).predict(np.array([[0]]))
    with pytest.raises(ValueError, match="fitted on 2 functions, given 1"):
        AccuracyWeighted(2).fit(np.array([[0, 1]])).predict(np.array([[0]]))


def _simulate(rng: np.random.Generator, n: int, accuracies: list[float], coverages: list[float],
              prior: list[float], bloc: Sequence[int] = (), copy_rate: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Votes with known accuracies and coverages; a function's errors are spread evenly
    over the wrong labels (the one-coin model). The functions in ``bloc`` copy one shared
    noisy vote on a ``copy_rate`` share of items, so their mistakes are correlated."""
    k = len(prior)
    truth = rng.choice(k, size=n, p=prior)

    def noisy(accuracy: float) -> np.ndarray:
        wrong = (truth + rng.integers(1, k, size=n)) % k
        return np.where(rng.random(n) < accuracy, truth, wrong)

    shared = noisy(accuracies[bloc[0]]) if bloc else None
    L = np.empty((n, len(accuracies)), dtype=int)
    for j, (accuracy, coverage) in enumerate(zip(accuracies, coverages)):
        votes = noisy(accuracy)
        if j in bloc:
            votes = np.where(rng.random(n) < copy_rate, shared, votes)
        L[:, j] = np.where(rng.random(n) < coverage, votes, ABSTAIN)
    return L, truth


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learned_model_beats_majority_vote_against_a_correlated_bloc(seed):
    # Two accurate functions that vote on 40% of items; five near-chance ones (chance is
    # 1/3) that vote on 90% and copy a common mistake-prone vote 30% of the time.
    accuracies = [0.9, 0.85, 0.45, 0.45, 0.45, 0.45, 0.45]
    coverages = [0.4, 0.4, 0.9, 0.9, 0.9, 0.9, 0.9]
    L, truth = _simulate(np.random.default_rng(seed), 5000, accuracies, coverages, [1 / 3] * 3,
                         bloc=[2, 3, 4, 5, 6], copy_rate=0.3)
    learned = AccuracyWeighted(3).fit(L)
    # Ties drawn at random or given the lowest label, so majority vote is not penalised
    # for abstaining on them.
    for baseline in (MajorityVote(3, tie_break="random", seed=seed), MajorityVote(3, tie_break="lowest")):
        assert (learned.predict(L) == truth).mean() > (baseline.predict(L) == truth).mean() + 0.04
    assert learned.accuracies[:2].min() > learned.accuracies[2:].max() + 0.1
    np.testing.assert_allclose(learned.predict_proba(L).sum(axis=1), 1.0)


def test_learned_model_recovers_accuracies_and_prior():
    accuracies = [0.9, 0.8, 0.7, 0.6, 0.5, 0.45]
    prior = [0.6, 0.3, 0.1]
    L, truth = _simulate(np.random.default_rng(7), 20000, accuracies, [0.3, 0.5, 0.6, 0.7, 0.8, 0.5], prior)
    L = np.column_stack([L, np.full(len(L), ABSTAIN)])  # a function that never votes
    learned = AccuracyWeighted(3).fit(L)
    np.testing.assert_allclose(learned.accuracies[:-1], accuracies, atol=0.05)
    assert learned.accuracies[-1] == pytest.approx(1 / 3)  # no evidence: chance
    np.testing.assert_allclose(learned.prior, prior, atol=0.03)
    assert np.argsort(learned.accuracies[:-1]).tolist() == [5, 4, 3, 2, 1, 0]
    predicted = learned.predict(L)
    assert (predicted[(L == ABSTAIN).all(axis=1)] == ABSTAIN).all()
    assert (predicted == truth).mean() > (MajorityVote(3, tie_break="random").predict(L) == truth).mean()


def test_learned_model_on_rules_that_vote_one_label():
    # Keyword-like rules: each votes one label, firing on a share of that label's items
    # ("hit") and of the others' ("false"). Votes alone cannot tell such rules' accuracy;
    # the abstentions can.
    rules = [(0, 0.3, 0.015), (1, 0.3, 0.015), (0, 0.5, 0.5), (1, 0.5, 0.15), (0, 0.5, 0.6), (1, 0.5, 0.2)]
    prior = np.array([0.7, 0.3])
    rng = np.random.default_rng(0)
    truth = rng.choice(2, size=20000, p=prior)
    L = np.column_stack([np.where(rng.random(truth.size) < np.where(truth == label, hit, false), label, ABSTAIN)
                         for label, hit, false in rules])
    precision = [prior[label] * hit / (prior[label] * hit + (1 - prior[label]) * false)
                 for label, hit, false in rules]
    learned = AccuracyWeighted(2).fit(L)
    np.testing.assert_allclose(learned.accuracies, precision, atol=0.08)
    np.testing.assert_allclose(learned.prior, prior, atol=0.03)
    majority = MajorityVote(2, tie_break="random").predict(L)
    assert (learned.predict(L) == truth).mean() > (majority == truth).mean() + 0.03

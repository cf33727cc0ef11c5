"""A fourth domain from a folder outside the repository, with nothing changed in shared/ or
assistants/: its config, sample documents, a benchmark format of its own (registered from
its plugins module through shared/plugins.py) and a scripted conversation, run through the
real command line: ingest, a chat turn, eval conversations and eval bench.

Cheap on purpose: a RAG domain (no adapter), two documents, a two-turn script (one turn
refused without the model), a two-item benchmark in the rag mode only."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from assistants.cli import main
from assistants.domains import DOMAINS

ROOT = Path(__file__).resolve().parents[1]
NAME = "gardening"

CONFIG = """\
domain:
  name: gardening
  title: Garden Helper
  description: Answers questions about growing vegetables from a few garden notes.
  approach: rag
  disclaimer: "Gardens differ: check with a local nursery before you plant."
  plugins: [gardening.plugins]     # registers the garden_qa benchmark format
chat:
  system_prompt: You are a gardening assistant. Answer only from the numbered sources and cite them like [1].
  refusal: I can't answer that from my garden notes.
ui:
  port: 7899
evaluation:
  scripts: eval
  benchmarks:
    garden:
      format: garden_qa               # the format this folder's plugins.py registers
      sample: eval/data/garden_qa.jsonl
      modes: [rag]
"""

PLUGINS = '''\
"""The gardening domain's own benchmark format: a question, the note that answers it and a
word the answer must mention."""
from pathlib import Path

from shared.evaluation.datasets import Dataset, Item, Passage, need, rows
from shared.plugins import benchmark_format


def mentions(answer: str, item: Item) -> dict:
    return {"mentions": float(str(item.answer).lower() in answer.lower())}


@benchmark_format("garden_qa", score_answer=mentions)
def garden_qa(path: Path, context: Path | None = None) -> Dataset:
    items, passages = [], []
    for r in rows(path):
        need(r, ("id", "question", "note", "mentions"), path)
        items.append(Item(r["id"], r["question"], "answer", r["mentions"], gold=[r["id"]]))
        passages.append(Passage(r["id"], "Garden note", r["note"]))
    return Dataset("garden_qa", items, passages)
'''

DOCUMENTS = {
    "tomatoes.md": """\
        ---
        title: Growing tomatoes
        ---
        Tomatoes need six to eight hours of direct sunlight a day. Water them deeply twice a
        week rather than a little every day, and stake the plants once they are a foot tall.
        """,
    "compost.md": """\
        ---
        title: Making compost
        ---
        A compost heap needs both green material, such as grass clippings and vegetable
        scraps, and brown material, such as dry leaves and straw. Turn the heap every two
        weeks so that air reaches the middle.
        """,
}

SCRIPT = """\
name: garden-basics
description: A question the notes answer is answered with the disclaimer; an off-topic one is refused.
turns:
  - user: How many hours of sunlight do tomatoes need?
    expect: {refuses: false, disclaimer: true}
  - user: Who won the 1998 football World Cup final?
    expect: {refuses: true}
"""

BENCHMARK = [
    {"id": "g1", "question": "How often should a compost heap be turned?", "mentions": "week",
     "note": "Turn a compost heap every two weeks so that air reaches the middle of the heap."},
    {"id": "g2", "question": "How much sun do tomato plants need?", "mentions": "hours",
     "note": "Tomato plants need six to eight hours of direct sunlight every day."},
]


def write_domain(parent: Path) -> Path:
    d = parent / NAME
    (d / "samples").mkdir(parents=True)
    (d / "eval" / "data").mkdir(parents=True)
    (d / "config.yaml").write_text(CONFIG)
    (d / "plugins.py").write_text(PLUGINS)
    for name, text in DOCUMENTS.items():
        (d / "samples" / name).write_text(textwrap.dedent(text))
    (d / "eval" / "basics.yaml").write_text(SCRIPT)
    (d / "eval" / "data" / "garden_qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in BENCHMARK))
    return d


@pytest.fixture
def fourth_domain(tmp_path, monkeypatch):
    folder = write_domain(tmp_path / "elsewhere")
    monkeypatch.setenv("ASSISTANTS_DOMAINS", str(folder))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the folder's parent joins it; restored afterwards
    yield folder
    for module in [m for m in sys.modules if m == NAME or m.startswith(NAME + ".")]:
        del sys.modules[module]


def test_a_fourth_domain_from_an_outside_folder(fourth_domain, db, tmp_path, capsys):
    assert NAME not in DOMAINS and ROOT not in fourth_domain.parents  # nothing of it in the repository

    assert main(["ingest", NAME, str(fourth_domain / "samples"), "--quiet"]) == 0
    assert "2 new" in capsys.readouterr().out

    assert main(["ask", NAME, "How many hours of sunlight do tomatoes need?"]) == 0
    out = capsys.readouterr().out
    assert "Growing tomatoes" in out and "Gardens differ" in out  # the source listed, the disclaimer shown

    assert main(["eval", "conversations", NAME, "--quiet"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 passed, 0 failed"

    report = tmp_path / "report"
    assert main(["eval", "bench", NAME, "--quiet", "--out", str(report)]) == 0
    scores = json.loads((report / "scores.json").read_text())
    assert scores["config"]["benchmarks"]["garden"]["format"] == "garden_qa"
    rag = scores["scores"]["garden"]["rag"]
    assert rag["n"] == 2 and 0.0 <= rag["mentions"] <= 1.0  # scored by the domain's own scorer
    assert "em" not in rag and "hit@5" in rag  # not the default EM/F1; retrieval measured on its notes


def test_external_domain_folders_are_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("ASSISTANTS_DOMAINS", str(tmp_path / "nothing_here"))
    assert main(["config", "legal"]) == 2
    err = capsys.readouterr().err
    assert "ASSISTANTS_DOMAINS" in err and "no config.yaml" in err
    taken = tmp_path / "legal"
    taken.mkdir()
    (taken / "config.yaml").write_text(CONFIG.replace("name: gardening", "name: legal"))
    monkeypatch.setenv("ASSISTANTS_DOMAINS", str(taken))
    assert main(["config", "legal"]) == 2
    assert "already a domain named 'legal'" in capsys.readouterr().err

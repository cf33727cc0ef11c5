"""The feedback-to-training loop end to end: answers liked or corrected in chat become
candidates in a review queue in Postgres (with their conversation, sources, model and
adapter), a reviewer accepts or rejects them with `assistants review`, `assistants train`
trains on the accepted ones through the data pipeline (a duplicate of the existing data is
dropped) and registers a new adapter whose data card counts them, and erasing the user
removes their candidates and marks the adapter's data card."""
from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import yaml

from shared.chat.recorder import Recorder
from shared.types import Passage
from shared.finetune import AdapterRegistry

from .test_cli import run

ROOT = Path(__file__).resolve().parents[1]


def answered(rec: Recorder, who: str, question: str, answer: str) -> str:
    cid = rec.start(who)
    rec.add_question(who, cid, question)
    return rec.add_answer(who, cid, answer, retrieval_query=None, grounded=False,
                          generator={"backend": "llamacpp", "model": "SmolLM2-test", "adapter": "medical/v0001"},
                          timings={}, usage={}, passages=[Passage(rank=1, node_id="n1", doc_id="leaflet-7", title="t",
                                                                  text="", score=0.5, similarity=0.5, cited=True)])


def candidate_ids(listing: str) -> dict[str, str]:
    """kind -> id, from `assistants review` output."""
    return {kind: cid for cid, kind in re.findall(r"^([0-9a-f-]{36})\s+(\w+)", listing, re.M)}


@pytest.mark.slow
def test_corrected_answer_is_reviewed_trained_and_erased(db, state_dir, tmp_path):
    who = "fb-" + uuid.uuid4().hex[:10]
    rec = Recorder(db, "medical")
    (sample,) = [json.loads(line) for line in (ROOT / "medical/train_data/sample_qa.jsonl").read_text().splitlines()[:1]]
    corrected = answered(rec, who, "How long does a bee sting stay swollen?", "It stays.")
    rec.correct(who, corrected, "Swelling from a bee sting usually peaks within a day and fades over three to "
                                "seven days; a cold compress helps, and spreading redness needs a clinician.")
    liked = answered(rec, who, sample["question"], sample["answer"])  # exactly an existing training example
    rec.feedback(who, liked, 1)
    withdrawn = answered(rec, who, "Is a cold caused by bacteria?", "No, by viruses.")
    rec.feedback(who, withdrawn, 1)
    rec.feedback(who, withdrawn, -1)  # a like taken back: no longer proposed

    listing = run("review", "medical").stdout
    mine = "\n".join(block for block in listing.split("\n\n") if f"by {who}" in block)
    ids = candidate_ids(mine)
    assert set(ids) == {"corrected", "liked"}, listing
    assert "model SmolLM2-test adapter medical/v0001" in mine and "cited leaflet-7" in mine and "conversation " in mine
    edited = "Swelling from a bee sting peaks within a day and fades over three to seven days."
    assert run("review", "medical", "--accept", ids["corrected"], "--answer", edited).returncode == 0
    assert run("review", "medical", "--accept", ids["liked"]).returncode == 0
    again = run("review", "medical", "--reject", ids["liked"])
    assert again.returncode == 2 and "no pending candidate" in again.stderr
    rec.feedback(who, liked, 1)  # liking it again does not send a reviewed example back to the queue
    assert ids["liked"] in run("review", "medical", "--status", "accepted").stdout

    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "data": {"sources": [{"path": str(ROOT / "medical/train_data/sample_qa.jsonl"), "group": "focus"},
                             {"path": "feedback", "records": "feedback",
                              "group": "group"}],
                 "val_fraction": 0.2, "augment": False},
        "lora": {"r": 4, "alpha": 8},
        "train": {"max_steps": 2, "batch_size": 2, "max_seq_length": 192, "eval_steps": 2, "save_steps": 2},
    }))
    trained = run("train", "medical", "--config", str(config), "--quiet", timeout=1800)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    version = re.search(r"registered adapter (v\d{4})", trained.stdout).group(1)
    card = AdapterRegistry(state_dir, "medical").get(version).manifest["data_card"]
    with db.owner_session() as conn:
        mine_trained = dict(conn.execute("SELECT kind, trained_in FROM training_candidates WHERE principal = %s",
                                         (who,)).fetchall())
    assert sum(card["sources"]["feedback"].values()) == 1, card["sources"]
    assert card["dropped"].get("exact duplicate", 0) >= 1, "the liked copy of a training example is de-duplicated"
    assert mine_trained == {"corrected": [version], "liked": []}

    erased = run("audit", "erase", who, "--yes")
    assert erased.returncode == 0 and "training_candidates 2" in erased.stdout, erased.stdout + erased.stderr
    with db.owner_session() as conn:
        assert conn.execute("SELECT count(*) FROM training_candidates WHERE principal = %s", (who,)).fetchone()[0] == 0
    card = AdapterRegistry(state_dir, "medical").get(version).manifest["data_card"]
    assert card["erased_after_training"][-1]["examples"] == 1


def test_reviewer_roles_are_checked_in_the_database(db):
    from shared.auth import UserError, Users

    users, who = Users(db), "rv-" + uuid.uuid4().hex[:8]
    with pytest.raises(UserError, match="unknown role"):
        users.add(who, password_hash="scrypt$test", roles=["admin"])
    users.add(who, password_hash="scrypt$test", roles=["reviewer:medical"])
    assert users.can_review(who, "medical") and not users.can_review(who, "legal")
    users.add(who, password_hash="scrypt$test2")  # a new password keeps the roles
    assert users.can_review(who, "medical")
    assert run("users", "roles", who, "--role", "reviewer").returncode == 0
    assert users.can_review(who, "legal")
    assert f"{who}" in (listed := run("users", "list").stdout) and "reviewer" in listed.split(who)[1].splitlines()[0]
    users.disable(who)
    assert not users.can_review(who, "legal") and not users.can_review(None, "legal")
    assert run("users", "roles", "nobody-" + who).returncode == 1

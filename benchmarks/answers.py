"""Answers that answer: the medical helper's scripted general questions
(medical/eval/general-questions.yaml), each in a fresh conversation, answered by the base
model and by each adapter version named on the command line, with the output check off
(what the model says) and on (what is shown).

Per model: the share of raw answers that are no answer (only the question restated, a
question back, nothing: shared/chat/answer_check.verdict), the share that open by restating
or asking (the rest then shown without it), and with the check on the share of shown
answers that are still no answer (the refusal or "can't answer" counts as none).

    python benchmarks/answers.py [VERSION ...]     # e.g. v0001 v0002 (var/adapters/medical)

Runs on the samples (the patient-education corpus is ingested for the fallback)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistants.domains import domain_dir, settings_for  # noqa: E402
from shared.chat.answer_check import leading_restatements, verdict  # noqa: E402
from shared.evaluation.conversations import context_for  # noqa: E402
from shared.evaluation.expectations import non_answer  # noqa: E402
from shared.evaluation.scripts import load_script  # noqa: E402
from shared.finetune.registry import AdapterRegistry  # noqa: E402
from shared.finetune.serving import PromotedAdapter  # noqa: E402
from shared.runtime import Runtime  # noqa: E402


def rates(rt: Runtime, generator, questions: list[str], checked: bool) -> dict[str, float]:
    s = rt.settings.model_copy(update={"chat": rt.settings.chat.model_copy(update={"answer_check": checked})})
    engine = Runtime(s, db=rt.db).chat_engine(generator)
    ctx = context_for(s)
    none = opens = 0
    for i, q in enumerate(questions):
        answer = engine.ask(q, principal=f"bench-answers-{i}").answer
        if checked:
            none += non_answer(q, answer, ctx) is not None
        else:
            none += verdict(q, answer) is not None
            opens += leading_restatements(q, answer, final=True)[0] > 0
    n = len(questions)
    return {"nonanswer": round(none / n, 3)} if checked else {"raw_nonanswer": round(none / n, 3),
                                                              "opens_restating": round(opens / n, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("versions", nargs="*", help="adapter versions to compare with the base model")
    args = ap.parse_args()
    s = settings_for("medical")
    questions = [t.user for t in load_script(domain_dir("medical") / "eval" / "general-questions.yaml").turns]
    results: dict[str, dict] = {}
    with Runtime(s) as rt:
        rt.ingestor().run([domain_dir("medical") / s.domain.samples], progress=False)
        loader, registry = PromotedAdapter(s), AdapterRegistry(s.state_dir, "medical")
        for name in ["base", *args.versions]:
            gen = loader.load(None if name == "base" else registry.get(name))
            t0 = time.perf_counter()
            results[name] = {**rates(rt, gen, questions, False), **rates(rt, gen, questions, True),
                             "seconds": round(time.perf_counter() - t0, 1)}
            print(name, results[name], flush=True)
    print(f"{len(questions)} questions; raw = the model's text, shown = after the output check")
    print("| model | raw no-answer | opens restating | shown no-answer |\n|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['raw_nonanswer']:.3f} | {r['opens_restating']:.3f} | {r['nonanswer']:.3f} |")
    print("RESULT " + " ".join(f"{k}_{name}={v}" for name, r in results.items() for k, v in r.items()
                               if k != "seconds") + f" n={len(questions)}")


if __name__ == "__main__":
    main()

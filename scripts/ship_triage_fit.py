"""Refits a domain's red-flag classifier and writes the fit it ships (``fitted/`` beside
its rules file): run after changing a triage bank or the rules file's classifier section,
then commit the file. tests/test_triage.py fails while the shipped fit is stale.

    python scripts/ship_triage_fit.py medical/rules.yaml [EMBEDDING_MODEL]
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.chat.rules import ship_fit  # noqa: E402
from shared.settings import EmbeddingSettings  # noqa: E402

if __name__ == "__main__":
    logging.basicConfig(format="%(message)s")
    logging.getLogger("shared").setLevel(logging.INFO)  # the encoder's tuning shows its steps; libraries stay quiet
    print(ship_fit(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else EmbeddingSettings().model))

#!/usr/bin/env bash
# The main job: set up .venv (idempotent), start the embedded Postgres, ingest the sample
# corpora of all three domains and serve the three UIs; missing adapters train in the
# background and switch in live. Re-running skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/assistants up "$@"

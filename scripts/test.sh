#!/usr/bin/env bash
# The whole test suite on real components (embedded Postgres, bundled MiniLM), after the
# same idempotent set-up as the main job. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
exec .venv/bin/python -m pytest "$@"

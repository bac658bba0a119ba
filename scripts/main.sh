#!/usr/bin/env bash
# The main job: execute every notebook in order with papermill (profile "default" unless given),
# regenerating figures/ and results/. Usage: bash scripts/main.sh [profile]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/setup.sh" smollm2-135m gemma3-270m qwen2.5-0.5b
cd "$ROOT"
time adainfer notebooks --profile "${1:-default}"

#!/usr/bin/env bash
# The whole test suite (slow tests included), after setting everything up. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${MLSERVICES_VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check .
ruff format --check .
pytest -q -p no:cacheprovider tests "$@"

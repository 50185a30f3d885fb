#!/usr/bin/env bash
# The whole test suite (slow tests included), then the benchmark suites in quick mode (tiny sizes,
# one round, no timing assertions, so they cannot rot), after setting everything up.
# CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${MLSERVICES_VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check .
ruff format --check .
pytest -q -p no:cacheprovider tests "$@"
MLSERVICES_BENCH_QUICK=1 pytest -q -p no:cacheprovider benchmarks

#!/usr/bin/env bash
# The main job: set up, then embed the shipped sample corpus (600 real texts) with the bundled
# default model and print the summary. Extra arguments go to `mlservices embed`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. "${MLSERVICES_VENV:-.venv}/bin/activate"
export HF_HUB_OFFLINE=1
mlservices embed mlservices/data/sample_corpus.jsonl -o out/sample_corpus.npy "$@"

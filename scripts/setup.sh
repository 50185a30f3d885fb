#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment, torch (never replacing one that is
# installed), the dependencies and mlservices with its compiled extension (built without pip's
# isolated build environment, against the torch in the venv). Safe to run again: it only adds
# what is missing and rebuilds the extension incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${MLSERVICES_VENV:-.venv}
TORCH_CPU_VERSION=2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

if ! python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: a GPU is present but torch is not installed in $VENV." >&2
    echo "       Install the CUDA build of torch that matches your driver first, then rerun." >&2
    exit 1
  fi
  echo "setup: installing torch==$TORCH_CPU_VERSION (CPU build)"
  pip install -q "torch==$TORCH_CPU_VERSION"
fi

# Pin the installed torch so that no dependency can upgrade or replace it.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
python -c "import torch; print(f'torch=={torch.__version__}')" > "$constraints"
echo "setup: keeping $(cat "$constraints")"

pip install -q -c "$constraints" setuptools wheel cmake ninja pybind11
MLSERVICES_BUILD_TYPE=${MLSERVICES_BUILD_TYPE:-Release} \
  pip install -q -c "$constraints" --no-build-isolation -e ".[test,triton,bench]"
python -c "import mlservices, mlservices.ops._cpp as c; \
print('setup: mlservices', mlservices.__version__, 'extension', 'built' if c.BUILD_INFO else 'MISSING')"

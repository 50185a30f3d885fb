#!/usr/bin/env bash
# The GPU check (issue 3, "On a GPU"): on a machine with an NVIDIA GPU and only its pre-installed
# Python packages (no network, nothing installed, no pip install of mlservices):
#   1. build mlservices._C with the CUDA kernels in place (setup.py build_ext --inplace);
#   2. record the machine (nvidia-smi, `mlservices info`: versions, extension, backends);
#   3. run the kernel tests on device tensors (tests/test_ops_triton.py picks CUDA when present)
#      and the sm_90 compile checks;
#   4. run every backend of every op against float64 on device tensors and time each kernel
#      against plain torch, in GB/s beside the measured copy bandwidth (gpu_ops_check.py);
#   5. run the encoder against sentence-transformers in fp16 on a random MiniLM-shaped model
#      (gpu_e2e.py), on the shared corpus or the shipped sample;
#   6. print a summary table last.
# Each step has its own timeout inside an 8-minute budget; a failing step is reported and the
# next one still runs. Logs and JSON go to $OUT (the device runner's folder) or --out DIR.
#
#   bash benchmarks/gpu_check.sh [--out DIR]      # on the GPU machine
#   bash benchmarks/gpu_check.sh --cpu            # dry run of steps 2, 4, 5 on CPU, small sizes
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

MODE=gpu
OUT_DIR=${OUT:-$ROOT/benchmarks/results/gpu-check}
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu | --dry-run) MODE=cpu ;;
    --out) OUT_DIR=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (use --cpu, --out DIR)" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT_DIR"

PY=${PYTHON:-python3}
BUDGET_S=${MLSERVICES_GPU_CHECK_BUDGET_S:-470}
START_S=$(date +%s)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONDONTWRITEBYTECODE=1
SUMMARY=()
LINK_MADE=0

# Without pip install, nothing maps kernels/ to mlservices.kernels (setup.py's package-dir does);
# a symlink does the same for this run and is removed at exit.
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ "$LINK_MADE" = 1 ]; then rm -f "$ROOT/mlservices/kernels"; fi
}
trap cleanup EXIT
if ! "$PY" -c "import mlservices.kernels" >/dev/null 2>&1 && [ ! -e "$ROOT/mlservices/kernels" ]; then
  ln -s ../kernels "$ROOT/mlservices/kernels" && LINK_MADE=1
fi

# step NAME TIMEOUT_S COMMAND...: run with a timeout (capped by the time left), log to
# $OUT_DIR/NAME.log, remember the outcome for the summary.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - ($(date +%s) - START_S)))
  if [ "$left" -lt 15 ]; then
    SUMMARY+=("$(printf '%-8s %-9s %s' "$name" "SKIPPED" "budget of ${BUDGET_S}s spent")")
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (timeout ${limit}s): $*"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0)) status=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status=TIMEOUT
  elif [ "$rc" -ne 0 ]; then
    status="FAIL($rc)"
  fi
  tail -n 25 "$OUT_DIR/$name.log"
  SUMMARY+=("$(printf '%-8s %-9s %4ss  %s' "$name" "$status" "$took" "$OUT_DIR/$name.log")")
}

skip() {
  SUMMARY+=("$(printf '%-8s %-9s %s' "$1" "SKIPPED" "$2")")
}

find_nvcc() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
  local candidate
  for candidate in "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" /usr/local/cuda/bin/nvcc; do
    if [ -x "$candidate" ]; then echo "$candidate"; return; fi
  done
  "$PY" - <<'EOF' 2>/dev/null
import pathlib, nvidia
for root in nvidia.__path__:
    for path in pathlib.Path(root).glob("*/bin/nvcc"):
        print(path)
        raise SystemExit
EOF
}

if [ "$MODE" = gpu ]; then
  NVCC=$(find_nvcc)
  if [ -n "$NVCC" ]; then
    export CUDACXX=$NVCC CUDA_HOME=${CUDA_HOME:-$(dirname "$(dirname "$NVCC")")}
    step build 220 env MLSERVICES_WITH_CUDA=1 "$PY" setup.py build_ext --inplace
  else
    # No nvcc: build the CPU kernels so Triton and the reference still run on the GPU.
    step build 150 env MLSERVICES_WITH_CUDA=0 "$PY" setup.py build_ext --inplace
    SUMMARY+=("$(printf '%-8s %-9s %s' cuda-ext MISSING 'no nvcc found: CUDA kernels not built')")
  fi
  # shellcheck disable=SC2016  # $0 is expanded by the inner bash: the Python to use
  step env 30 bash -c 'nvidia-smi; "$0" -m mlservices.cli info' "$PY"
  TESTS=(tests/test_ops_triton.py tests/test_cuda_compile.py)
  step pytest 120 "$PY" -m pytest -q -p no:cacheprovider -x --no-header -rfE "${TESTS[@]}"
  step ops 120 "$PY" benchmarks/gpu_ops_check.py --out "$OUT_DIR"
  step e2e 120 "$PY" benchmarks/gpu_e2e.py --out "$OUT_DIR"
else
  skip build "--cpu: the local extension is used as built"
  step env 30 "$PY" -m mlservices.cli info
  skip pytest "--cpu: the kernel tests run in the normal test suite"
  step ops 150 "$PY" benchmarks/gpu_ops_check.py --cpu --out "$OUT_DIR"
  step e2e 150 "$PY" benchmarks/gpu_e2e.py --cpu --texts 32 --rounds 1 --out "$OUT_DIR"
fi

{
  echo
  echo "=== gpu_check summary ($MODE, $(($(date +%s) - START_S))s of ${BUDGET_S}s)"
  printf '%s\n' "${SUMMARY[@]}"
  for name in ops e2e; do
    if [ -f "$OUT_DIR/$name.log" ]; then
      echo "--- $name"
      grep -E '^(  |engine|-+  -|mlservices|sentence-transformers|correctness|speed|end to end)' \
        "$OUT_DIR/$name.log" | grep -v '^  File ' | head -n 70
    fi
  done
} | tee "$OUT_DIR/summary.txt"

if printf '%s\n' "${SUMMARY[@]}" | grep -qE 'FAIL|TIMEOUT|MISSING'; then
  exit 1
fi
exit 0

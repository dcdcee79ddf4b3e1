#!/usr/bin/env bash
# The device check, run once whenever a GPU machine is lent: the engine benchmarks and a tune job in bf16, under 8
# minutes, every result as JSON under $OUT (or ./gpu-suite when OUT is unset). Needs CUDA; CI never runs it.
#   bash benchmarks/gpu_suite.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-suite}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# A lent machine's image has torch but not the service's packages: carry them as wheels in .whl (made here by
# `bash benchmarks/gpu_wheels.sh`); they are installed into /tmp/site, and `mdmtune` runs from this checkout.
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! command -v mdmtune >/dev/null || ! command -v python >/dev/null; then  # commands, since `timeout` runs them
  py="$(command -v python3)"
  mkdir -p /tmp/mdmtune-bin
  printf '#!/bin/sh\nexec %s "$@"\n' "$py" > /tmp/mdmtune-bin/python
  printf '#!/bin/sh\nexec %s -c "from mdmtune.cli.main import main; main()" "$@"\n' "$py" > /tmp/mdmtune-bin/mdmtune
  chmod +x /tmp/mdmtune-bin/python /tmp/mdmtune-bin/mdmtune
  export PATH="/tmp/mdmtune-bin:$PATH"
fi
echo "$(date +%T) checking CUDA" >&2
timeout 120 python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__)" \
  || { echo '{"step": "cuda_check", "exit": 1}'; exit 1; }
step() {  # name, command...: run with a time limit, keep its JSON and its log; say when it starts
  local name="$1"; shift
  echo "$(date +%T) $name" >&2
  timeout 90 "$@" > "$out/$name.json" 2> "$out/$name.log"
  echo "{\"step\": \"$name\", \"exit\": $?}"
}
step sampler_overhead python benchmarks/sampler_overhead.py --device cuda --dtype bfloat16 --batch 256 --steps 16
step batched_trials python benchmarks/batched_trials.py --device cuda --dtype bfloat16 --records 64
step frontier_cost python benchmarks/frontier_cost.py --testbed sudoku --budgets 4,8 --records 80 --trials 16
step tune_bf16 mdmtune tune --checkpoint examples/sudoku/checkpoint --eval-set examples/sudoku/eval.jsonl \
  --metric sudoku --steps 8 --trials 40 --json --no-figures --out "$out/tune"
step foreign_bf16 mdmtune sample --checkpoint examples/bert_arithmetic/checkpoint \
  --eval-set examples/bert_arithmetic/eval.jsonl --metric exact_match --gen-length 16 --steps 8 --name linear --json

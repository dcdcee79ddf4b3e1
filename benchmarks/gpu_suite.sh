#!/usr/bin/env bash
# The device check, run once whenever a GPU machine is lent: the engine benchmarks and a tune job in bf16, under 8
# minutes, every result as JSON under $OUT (or ./gpu-suite when OUT is unset). Needs CUDA; CI never runs it.
#   bash benchmarks/gpu_suite.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-suite}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
step() {  # name, command...: run with a time limit, keep its JSON and its log
  local name="$1"; shift
  timeout 150 "$@" > "$out/$name.json" 2> "$out/$name.log"
  echo "{\"step\": \"$name\", \"exit\": $?}"
}
step sampler_overhead python benchmarks/sampler_overhead.py --device cuda --dtype bfloat16 --batch 256 --steps 16
step batched_trials python benchmarks/batched_trials.py --device cuda --dtype bfloat16 --records 64
step frontier_cost python benchmarks/frontier_cost.py --testbed sudoku --budgets 4,8 --records 80 --trials 16
step tune_bf16 mdmtune tune --checkpoint examples/sudoku/checkpoint --eval-set examples/sudoku/eval.jsonl \
  --metric sudoku --steps 8 --trials 40 --json --no-figures --out "$out/tune"
step foreign_bf16 mdmtune sample --checkpoint examples/bert_arithmetic/checkpoint \
  --eval-set examples/bert_arithmetic/eval.jsonl --metric exact_match --gen-length 16 --steps 8 --name linear --json

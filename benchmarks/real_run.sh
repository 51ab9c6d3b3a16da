#!/usr/bin/env bash
# The real run of the flat search presets, end to end, on the full data (docs/search.md: "A real
# run of the flat presets"), with 2 workers of 1 torch thread each (a 2-core CPU). Wall times go to
# benchmarks/results/real_run/times.txt; the studies are exported as CSV there too.
#   FASHION_MNIST_ROOT=/path/to/data bash benchmarks/real_run.sh          # hand-written split:
#       phase1_flat, phase2_flat, then final and final_baseline side by side, then the screen
#   FASHION_MNIST_ROOT=/path/to/data bash benchmarks/real_run.sh auto     # screened split (needs
#       the screen study): phase1_auto, phase2_auto, then final on phase2_auto's best
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/real_run
SPLIT=${1:-hand}
mkdir -p "$OUT" multirun

stage() {  # stage NAME N_WORKERS ARGS...: N workers of one command; wall time recorded
  local name=$1 n=$2; shift 2
  local t0; t0=$(date +%s)
  for i in $(seq 1 "$n"); do
    "$PY" train.py -m "$@" > "multirun/${name}_worker_$i.log" 2>&1 &
  done
  wait
  echo "$name $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
}

export_studies() {  # export_studies STUDY...: trials as CSV, importances copied
  "$PY" - "$@" <<'PY'
import sys

import optuna

for name in sys.argv[1:]:
    study = optuna.load_study(study_name=name, storage="sqlite:///multirun/optuna.db")
    study.trials_dataframe(multi_index=False).to_csv(f"benchmarks/results/real_run/{name}.csv",
                                                     index=False)
PY
  for name in "$@"; do
    [ -f "multirun/$name/importances.csv" ] && cp "multirun/$name/importances.csv" "$OUT/${name}_importances.csv"
  done
  return 0
}

if [ "$SPLIT" = auto ]; then
  stage phase1_auto 2 hparams_search=phase1_auto trainer.num_threads=1
  stage phase2_auto 2 hparams_search=phase2_auto trainer.num_threads=1
  stage final_auto 1 hparams_search=final hydra.sweeper.pin_from=phase2_auto \
    hydra.sweeper.study_name=final_auto trainer.num_threads=2
  export_studies phase1_auto phase2_auto final_auto
else
  : > "$OUT/times.txt"
  stage phase1_flat 2 hparams_search=phase1_flat trainer.num_threads=1
  stage phase2_flat 2 hparams_search=phase2_flat trainer.num_threads=1
  t0=$(date +%s)
  "$PY" train.py -m hparams_search=final hydra.sweeper.pin_from=phase2_flat trainer.num_threads=1 \
    > multirun/final.log 2>&1 &
  "$PY" train.py -m hparams_search=final_baseline trainer.num_threads=1 \
    > multirun/final_baseline.log 2>&1 &
  wait
  echo "final+final_baseline $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
  stage screen 2 hparams_search=screen trainer.num_threads=1
  export_studies phase1_flat phase2_flat final final_baseline screen
fi
echo "done: $OUT"

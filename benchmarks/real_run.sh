#!/usr/bin/env bash
# The real run of the default presets, end to end, on the full data (README "A real run"):
# phase 1 and phase 2 with 2 workers each (1 torch thread per worker, a 2-core CPU), then the
# final stage and the sheet's baseline retrained the same way (side by side), then the
# screening study. Wall times go to benchmarks/results/real_run/times.txt; the studies are
# exported as CSV there too. Run from the repository root:
#   FASHION_MNIST_ROOT=/path/to/data bash benchmarks/real_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/real_run
mkdir -p "$OUT" multirun
: > "$OUT/times.txt"

stage() {  # stage NAME N_WORKERS ARGS...: N workers of one command; wall time recorded
  local name=$1 n=$2; shift 2
  local t0; t0=$(date +%s)
  for i in $(seq 1 "$n"); do
    "$PY" train.py -m "$@" > "multirun/${name}_worker_$i.log" 2>&1 &
  done
  wait
  echo "$name $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
}

stage phase1 2 hparams_search=phase1 trainer.num_threads=1
stage phase2 2 hparams_search=phase2 trainer.num_threads=1
t0=$(date +%s)
"$PY" train.py -m hparams_search=final trainer.num_threads=1 > multirun/final.log 2>&1 &
"$PY" train.py -m hparams_search=final_baseline trainer.num_threads=1 > multirun/final_baseline.log 2>&1 &
wait
echo "final+final_baseline $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
stage screen 2 hparams_search=screen trainer.num_threads=1
"$PY" - <<'PY'
import optuna
url = "sqlite:///multirun/optuna.db"
for name in ("phase1", "phase2", "final", "final_baseline", "screen"):
    study = optuna.load_study(study_name=name, storage=url)
    study.trials_dataframe(multi_index=False).to_csv(f"benchmarks/results/real_run/{name}.csv",
                                                     index=False)
PY
for name in phase1 phase2 screen; do
  cp "multirun/$name/importances.csv" "$OUT/${name}_importances.csv" || true
done
echo "done: $OUT"

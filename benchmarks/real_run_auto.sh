#!/usr/bin/env bash
# The screened split on the same budget as benchmarks/real_run.sh (run that first: it leaves
# the "screen" study): phase1_auto searches the screen's 4 most important parameters,
# phase2_auto the others with phase1_auto's best pinned, then the final stage on its best.
#   FASHION_MNIST_ROOT=/path/to/data bash benchmarks/real_run_auto.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/real_run
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

stage phase1_auto 2 hparams_search=phase1_auto trainer.num_threads=1
stage phase2_auto 2 hparams_search=phase2_auto trainer.num_threads=1
stage final_auto 1 hparams_search=final hydra.sweeper.pin_from=phase2_auto \
  hydra.sweeper.study_name=final_auto trainer.num_threads=2
"$PY" - <<'PY'
import optuna
url = "sqlite:///multirun/optuna.db"
for name in ("phase1_auto", "phase2_auto", "final_auto"):
    study = optuna.load_study(study_name=name, storage=url)
    study.trials_dataframe(multi_index=False).to_csv(f"benchmarks/results/real_run/{name}.csv",
                                                     index=False)
PY
for name in phase1_auto phase2_auto; do
  cp "multirun/$name/importances.csv" "$OUT/${name}_importances.csv" || true
done
echo "done: $OUT"

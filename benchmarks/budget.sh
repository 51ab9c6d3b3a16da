#!/usr/bin/env bash
# The same-budget comparison (docs/search.md: "Multi-fidelity and the same-budget comparison"):
# each side runs phase 1 and phase 2 under the same time budget (hydra.sweeper.timeout), then
# the final stage (3 seeds, the test split once), on the full data with WORKERS slots of one
# torch thread each. Sides, one after the other, each in its own storage:
#   ours         hparams_search=phase1 / phase2: 20-epoch cap, Hyperband, async slots
#   plugin_like  hparams_search=phase1_plugin_like / phase2_plugin_like: hydra-optuna-sweeper's
#                features (TPE, batches, no pruning, no early stopping, every trial 15 epochs)
#   flat         hparams_search=phase1_flat / phase2_flat (15-epoch cap, median pruning)
# LAUNCH=workers (default): the phases run as WORKERS sweep processes on one SQLite study
#   (make workers): trials run inside them, the data is read once per worker. Each worker runs
#   one trial at a time, so plugin_like's async_slots=false has no effect there: it gets
#   asynchronous workers for free (a setup that favours it).
# LAUNCH=slots: one sweep process with n_jobs=WORKERS through submitit's local launcher: the
#   plugin's batches are honoured, and every trial pays a new process (~5 s on a 2-core CPU).
# The final stage is one process, n_jobs=FINAL_JOBS (> 1: through submitit's local launcher).
# The studies go to $OUT/<side>/<study>.csv, the figures to $OUT/summary.json
# (benchmarks/budget_summary.py); logs and storages stay in $WORK/<side>/.
#   FASHION_MNIST_ROOT=/path/to/data bash benchmarks/budget.sh                  # ~2 x 28 min
#   SIDES="ours flat plugin_like" FASHION_MNIST_ROOT=/path/to/data bash benchmarks/budget.sh
# Smoke mode (tests/app/test_budget_script.py): tiny data, tiny budget, e.g.
#   PHASE_S=20 EPOCHS_MF=3 EPOCHS_FLAT=2 MIN_RESOURCE=1 EXTRA="data.holdout_size=128" \
#     OUT=/tmp/budget WORK=/tmp/budget_work FASHION_MNIST_ROOT=/tmp/tiny bash benchmarks/budget.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/results/budget}        # CSVs, times.txt per side, summary.json
WORK=${WORK:-multirun/budget}                # storages and sweep dirs (wiped per side)
SIDES=${SIDES:-ours plugin_like}             # the sides, run in this order
export PHASE_S=${PHASE_S:-510}               # each phase's hydra.sweeper.timeout (seconds): 2 x 8.5 min
                                             #   + the final stage (3 seeds side by side) fit in BUDGET_S
export TIMEOUT_PRUNE=${TIMEOUT_PRUNE:-true}  # running trials pruned at the deadline (false: finish)
export WORKERS=${WORKERS:-2}                 # concurrent trials of phase 1 and phase 2
export LAUNCH=${LAUNCH:-workers}             # workers (WORKERS processes) | slots (n_jobs=WORKERS)
export FINAL_JOBS=${FINAL_JOBS:-3}           # slots of the final stage (one per seed)
export BUDGET_S=${BUDGET_S:-1800}            # a side's wall-clock budget, checked in summary.json
export N_TRIALS=${N_TRIALS:-1000}            # n_trials and max_total_trials: the timeout decides
export EPOCHS_MF=${EPOCHS_MF:-}              # ours' epoch cap (empty: the preset's, 20)
export EPOCHS_FLAT=${EPOCHS_FLAT:-}          # plugin_like's and flat's cap (empty: 15)
export MIN_RESOURCE=${MIN_RESOURCE:-}        # ours' first Hyperband rung (empty: the preset's, 2)
export SEEDS=${SEEDS:-}                      # the final stage's seeds (empty: choice(1, 2, 3))
export EXTRA=${EXTRA:-}                      # more overrides for every stage (space-separated)
export FASHION_MNIST_ROOT=${FASHION_MNIST_ROOT:-}
[ -n "$FASHION_MNIST_ROOT" ] || { echo "error: set FASHION_MNIST_ROOT (a folder holding FashionMNIST/raw/)" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
WORK_ABS=$(cd "$WORK" && pwd)
read -r -a extra <<< "$EXTRA"

stage() {  # stage SIDE NAME N ARGS...: N sweep processes of one command, waited for;
  local side=$1 name=$2 n=$3; shift 3  # the stage's wall time goes to $OUT/SIDE/times.txt
  local t0=$EPOCHREALTIME i rc failed=0 pids=()
  echo "[$side] $name: ${n}x train.py -m $*" >&2
  for i in $(seq 1 "$n"); do
    "$PY" train.py -m "$@" "${extra[@]}" > "$WORK_ABS/$side/${name}_$i.log" 2>&1 &
    pids+=("$!")
  done
  for i in "${!pids[@]}"; do
    rc=0; wait "${pids[$i]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
      failed=1
      echo "error: [$side] $name process $((i + 1)) exited $rc; see $WORK_ABS/$side/${name}_$((i + 1)).log" >&2
      grep -v "setup plugin" "$WORK_ABS/$side/${name}_$((i + 1)).log" | tail -n 5 >&2
    fi
  done
  [ "$failed" -eq 0 ] || exit 1
  echo "$name $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" | tee -a "$OUT/$side/times.txt" >&2
}

case $LAUNCH in
  workers) procs=$WORKERS; launch=(hydra.sweeper.n_jobs=1) ;;
  slots) procs=1; launch=(hydra/launcher=submitit_local "hydra.sweeper.n_jobs=$WORKERS") ;;
  *) echo "error: LAUNCH=$LAUNCH: use workers or slots" >&2; exit 2 ;;
esac

specs=()
for side in $SIDES; do
  case $side in
    ours) p1=phase1; p2=phase2; epochs=$EPOCHS_MF ;;
    plugin_like) p1=phase1_plugin_like; p2=phase2_plugin_like; epochs=$EPOCHS_FLAT ;;
    flat) p1=phase1_flat; p2=phase2_flat; epochs=$EPOCHS_FLAT ;;
    *) echo "error: SIDES: unknown side '$side' (ours, plugin_like, flat)" >&2; exit 2 ;;
  esac
  rm -rf "${WORK_ABS:?}/$side" "${OUT:?}/$side"   # a fresh study: no resume of an old run
  mkdir -p "$WORK_ABS/$side" "$OUT/$side"
  common=(
    "hydra.sweeper.storage=sqlite:///$WORK_ABS/$side/optuna.db"
    "hydra.sweep.dir=$WORK_ABS/$side/\${hydra.sweeper.study_name}"
    trainer.num_threads=1
  )
  phase=(
    "${common[@]}"
    "${launch[@]}"
    "hydra.sweeper.timeout=$PHASE_S"
    "hydra.sweeper.timeout_prune=$TIMEOUT_PRUNE"
    "hydra.sweeper.n_trials=$N_TRIALS"
    "hydra.sweeper.max_total_trials=$N_TRIALS"
  )
  [ -n "$epochs" ] && phase+=("trainer.epochs=$epochs")
  [ "$side" = ours ] && [ -n "$MIN_RESOURCE" ] && phase+=("hydra.sweeper.pruner.min_resource=$MIN_RESOURCE")
  final=(
    "${common[@]}"
    "hydra.sweeper.n_jobs=$FINAL_JOBS"
    "hydra.sweeper.pin_from=$p2"
    hydra.sweeper.study_name=final
  )
  [ "$FINAL_JOBS" -gt 1 ] && final+=(hydra/launcher=submitit_local)  # the seeds side by side
  [ -n "$SEEDS" ] && final+=("seed=$SEEDS")  # a command-line seed=choice(...) wins over the preset's
  : > "$OUT/$side/times.txt"
  stage "$side" phase1 "$procs" "hparams_search=$p1" "${phase[@]}"
  stage "$side" phase2 "$procs" "hparams_search=$p2" "${phase[@]}"
  stage "$side" final 1 hparams_search=final "${final[@]}"
  specs+=("$side=$p1,$p2,final")
done

"$PY" benchmarks/budget_summary.py --work "$WORK_ABS" --out "$OUT" "${specs[@]}"
echo "done: $OUT/summary.json"

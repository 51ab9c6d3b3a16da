#!/usr/bin/env bash
# One-shot check on a CUDA machine: the CUDA tests, then the CUDA epoch benchmark.
#
#   bash benchmarks/gpu_prepare.sh                  # first, where pip works: .whl/ and data/
#   OUT=/path/to/out FASHION_MNIST_ROOT=$PWD/data bash benchmarks/gpu_check.sh
#
# FASHION_MNIST_ROOT  folder holding FashionMNIST/raw/ (the four uncompressed IDX files),
#                     provided by the caller; the benchmark needs it (nothing is downloaded),
#                     the tests do not (they write their own tiny dataset).
# OUT                 where the logs and epoch_speed_cuda.json go (default: ./gpu_check_out).
# .whl/               optional: wheels of the Python packages the machine lacks (hydra-core,
#                     omegaconf, ...; gpu_prepare.sh builds them), installed with --no-deps
#                     into /tmp/site. Checked on a CPU copy of the GPU image's package set:
#                     with them, the whole test suite passes (but the SLURM launcher test).
# PYTHON              interpreter to use (default: python3; torch must already be there).
#
# SLOTS_K             trials per sweep slot count to measure (default: "1 2 4"): K LeNet trials
#                     at once on one GPU (hydra.sweeper.slot_overrides, every slot cuda:0) and,
#                     where the machine has K GPUs, one per GPU (cuda:0..K-1); a short sweep
#                     each (hydra/launcher=submitit_local, 2K trials). SLOTS_DEVICE=cpu and
#                     SLOTS_ARGS="data=fashion_mnist_subset" dry-run it on a CPU machine.
#
# Fail-safe: every step runs even if an earlier one failed; the exit status is the
# benchmark's. Outputs: env.txt, pip.log, pytest_cuda.log, epoch_speed_cuda.{log,json},
# slots_gpu.{log,jsonl} (one line per K and layout: trials, wall_s, trials_per_min).
set -x
cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-$PWD/gpu_check_out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1 \
    || echo "pip install failed: see $OUT/pip.log"
fi
export PYTHONPATH="/tmp/site:$PWD:$PWD/sweeper/src${PYTHONPATH:+:$PYTHONPATH}"  # + lab_optuna
export MPLBACKEND=Agg
echo "FASHION_MNIST_ROOT=${FASHION_MNIST_ROOT:-<unset>}" >"$OUT/env.txt"
nvidia-smi >>"$OUT/env.txt" 2>&1
"$PY" -c "import torch, sys; print(sys.version); print(torch.__version__, torch.version.cuda, \
torch.cuda.is_available() and torch.cuda.get_device_name())" >>"$OUT/env.txt" 2>&1
timeout 300 "$PY" -m pytest -m cuda tests/ -v -rs -p no:cacheprovider \
  >"$OUT/pytest_cuda.log" 2>&1
echo "pytest exit status: $?" >>"$OUT/pytest_cuda.log"
timeout 420 "$PY" benchmarks/epoch_speed.py --device cuda --epochs 5 \
  --json "$OUT/epoch_speed_cuda.json" >"$OUT/epoch_speed_cuda.log" 2>&1
status=$?
# K trials sharing one GPU vs one trial per GPU: the sweeper gives slot i trainer.device=v_i.
SLOT_DEV="${SLOTS_DEVICE:-cuda}"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
: >"$OUT/slots_gpu.jsonl"
for K in ${SLOTS_K:-1 2 4}; do
  for layout in shared per_gpu; do
    if [ "$layout" = per_gpu ] && { [ "$K" -eq 1 ] || [ "$SLOT_DEV" != cuda ] || [ "$NGPU" -lt "$K" ]; }; then
      echo "K=$K per_gpu: skipped ($NGPU GPU(s))" >>"$OUT/slots_gpu.log"
      continue
    fi
    devices=""
    for ((i = 0; i < K; i++)); do
      if [ "$SLOT_DEV" != cuda ]; then devices+="$SLOT_DEV,"
      elif [ "$layout" = shared ]; then devices+="cuda:0,"
      else devices+="cuda:$i,"; fi
    done
    name="slots_${layout}_$K"
    rm -rf "$OUT/$name" "$OUT/$name.db"
    start=$(date +%s.%N)
    # shellcheck disable=SC2086  # SLOTS_ARGS: several overrides
    timeout 600 "$PY" train.py -m hydra/sweeper=lab_optuna hydra/launcher=submitit_local \
      "hydra.sweep.dir=$OUT/$name" "hydra.sweeper.storage=sqlite:///$OUT/$name.db" \
      "hydra.sweeper.study_name=$name" hydra.sweeper.direction=maximize \
      "hydra.sweeper.n_trials=$((2 * K))" "hydra.sweeper.n_jobs=$K" \
      "hydra.sweeper.slot_overrides={trainer.device:[${devices%,}]}" 'seed=range(1,1000)' \
      hydra.sweeper.artifacts=null trainer.epochs=2 trainer.progress_bar=false \
      trainer.save_samples=false ${SLOTS_ARGS:-} >>"$OUT/slots_gpu.log" 2>&1
    rc=$?
    "$PY" - "$OUT/$name.db" "$name" "$K" "$layout" "$rc" "$start" >>"$OUT/slots_gpu.jsonl" \
      2>>"$OUT/slots_gpu.log" <<'PYEOF'
import json, sys, time
import optuna
db, name, k, layout, rc, start = sys.argv[1:]
wall = time.time() - float(start)
try:
    trials = optuna.load_study(study_name=name, storage=f"sqlite:///{db}").trials
except Exception:  # noqa: BLE001 - the sweep failed before its study existed
    trials = []
done = [t for t in trials if t.state.name == "COMPLETE"]
span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds() if done else None
print(json.dumps({
    "k": int(k), "layout": layout, "rc": int(rc), "trials": len(trials), "complete": len(done),
    "devices": sorted({(t.user_attrs.get("slot_overrides") or {}).get("trainer.device", "?") for t in done}),
    "slots": sorted({t.user_attrs.get("slot", -1) for t in done}),
    "wall_s": round(wall, 1), "span_s": span and round(span, 1),
    "trials_per_min": span and round(60 * len(done) / span, 2),
    "mean_trial_s": done and round(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in done) / len(done), 1),
}))
PYEOF
  done
done
cat "$OUT/slots_gpu.jsonl"
tail -n 25 "$OUT/pytest_cuda.log" "$OUT/epoch_speed_cuda.log"
exit $status

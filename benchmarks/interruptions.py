"""Interruptions: the epochs a killed sweep worker loses, before and after #25, and the
checkpoint's cost per epoch.

Part 1, epochs lost per interruption. Per side, a one-trial sweep of fixed params (those of
``workers.py``, the lr as a one-value choice so that the trial has params to continue with) on
the 10k subset and the hold-out, E epochs, no early stopping, no pruner, heartbeat 1 s, grace
3 s. The worker is killed (SIGKILL, its whole process group) K times at a random moment of
its progress: once its job has trained floor(u) epochs of its own, u - floor(u) of that last
epoch's seconds later, u uniform in [1.5, 9.5] (seeded). (A kill at a fixed time after the
start missed its aim on this shared CPU, whose epochs slow down up to 10x when other test
runs start.) After each kill the script waits past the grace period and starts a worker again
with the same command; the worker fails the stale trial and runs its continuation (a new
WAITING trial, same params). The last attempt runs to the end. ``before``:
``trainer.resume=false`` (every attempt starts at epoch 0, as before #25); ``after``:
``trainer.resume=true`` (the default). On ``after`` the lineage advances with every attempt,
so each draw is capped at the epochs left - 1.5 (E = 30 leaves room for 5 kills). An
uninterrupted sweep of the same command is timed first (the calibration: its startup and
epoch seconds, the reference for an attempt's cost).

Per kill: ``finished`` (the last epoch in the killed attempt's metrics.csv), ``resumed_after``
(the epoch the next attempt that started training continued after: its train.log line
"continuing the run saved in ... after epoch N", else 0), ``epochs_lost`` = finished -
resumed_after (0 for an attempt killed before it trained an epoch), and ``seconds_lost`` = the
killed attempt's wall time minus the seconds of the epochs it trained that were kept. Then the
final trial must be COMPLETE with epochs_run E, every other trial FAIL, none RUNNING/WAITING.

Part 2, the checkpoint's cost: ``lenet_lab.run.train`` in this process on the full data (50k
train, 10k hold-out), a few epochs, with ``lenet_lab.resume.save`` timed at every call; then
``save`` is called again many times on that run's state (median) and compared with the run's
mean epoch seconds (metrics.csv ``seconds``). Target: <= 5 % of an epoch.

Each finished part goes into the JSON at once; run again, the script skips the parts the JSON
already holds for the same settings (``--fresh`` redoes them).

    FASHION_MNIST_ROOT=/work/shared/data nice -n 5 python benchmarks/interruptions.py  # ~6 min
    python benchmarks/interruptions.py --smoke --json /tmp/interruptions_smoke.json  # tiny, ~2 min
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from workers import FIXED  # noqa: E402  (the same fixed params as the workers benchmark)

#: trainer.resume per side.
SIDES = {"before": False, "after": True}
#: The fixed params; the lr is a one-value choice: a trial without params is not continued.
PARAMS = [f for f in FIXED if not f.startswith("optimizer.lr=")] + ["optimizer.lr=choice(0.05)"]
CONTINUING = re.compile(r"continuing the run saved in .* after epoch (\d+)")
STARTED = "training step:"  # the lab's last line before its epoch loop
TARGET_EPOCHS_LOST = 1.0  # per interruption, after
TARGET_CHECKPOINT_RATIO = 0.05  # of an epoch
HEARTBEAT_S, GRACE_S = 1, 3


def data_overrides(smoke: bool, full: bool) -> list[str]:
    """The real 10k subset (or the full data) with the hold-out; tiny data in smoke mode."""
    data = ["data=fashion_mnist" if full else "data=fashion_mnist_subset", "data.val_split=holdout"]
    if smoke:
        data += ["data.train_size=null", "data.val_size=null", "data.holdout_size=256"]
    return data


def sweep_cmd(folder: Path, name: str, resume: bool, epochs: int, args: argparse.Namespace):
    """The one-trial sweep every attempt of a side runs (the same command each time)."""
    return [
        sys.executable,
        "train.py",
        "-m",
        "hparams_search=phase1_flat",
        *data_overrides(args.smoke, full=False),
        f"trainer.epochs={epochs}",
        "hydra.sweeper.n_trials=1",
        f"hydra.sweeper.storage=sqlite:///{folder / 'study.db'}",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.heartbeat_interval={HEARTBEAT_S}",
        f"hydra.sweeper.grace_period={GRACE_S}",
        f"hydra.sweeper.max_retry={args.kills + 1}",
        "hydra.sweeper.params=null",
        "hydra.sweeper.importances=[]",
        "hydra/sweeper/pruner=none",
        "early_stopping=none",
        f"hydra.sweep.dir={folder / 'sweep'}",
        f"trainer.num_threads={args.threads}",
        f"trainer.resume={str(resume).lower()}",
        *PARAMS,
    ]


def launch(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as f:  # the child keeps its own descriptor
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


def metrics(trial_dir: Path) -> list[dict[str, float]]:
    """The complete rows of a run's metrics.csv (none if it has none)."""
    path = trial_dir / "metrics.csv"
    if not path.is_file():
        return []
    found = []
    with path.open() as f:
        for row in csv.DictReader(f):
            try:
                found.append({"epoch": int(row["epoch"]), "seconds": float(row["seconds"])})
                found[-1]["val_acc"] = float(row["val_acc"])
            except (KeyError, TypeError, ValueError):  # a row cut by the kill
                break
    return found


def started_after(trial_dir: Path) -> int | None:
    """The epoch the attempt continued after (0: from the start), None if it has not begun
    its epochs (starting, or killed while starting). metrics.csv is opened after the
    "continuing" line is logged, so a "training step" line alone is not yet a 0."""
    log = trial_dir / "train.log"
    if not log.is_file():
        return None
    text = log.read_text(errors="replace")
    found = CONTINUING.search(text)
    if found:
        return int(found.group(1))
    return 0 if STARTED in text and (trial_dir / "metrics.csv").is_file() else None


def kill_after_progress(
    proc: subprocess.Popen, sweep: Path, known: set[Path], u: float, epoch_s: float, limit: float
) -> bool:
    """SIGKILL the worker's process group once its new job has trained ``floor(u)`` epochs
    of its own and then ``u - floor(u)`` of the last one's seconds more (``epoch_s`` if
    ``u < 1``); False if the worker ended first."""
    whole, frac = int(u), u - int(u)
    t0, job, after, due = time.time(), None, None, None
    while proc.poll() is None:
        now = time.time()
        if now - t0 > limit:
            break
        if job is None:
            new = [d for d in sweep.glob("trial_*") if d not in known]
            job = max(new, key=lambda d: int(d.name.split("_")[1])) if new else None
        if job is not None and after is None:
            after = started_after(job)
            if after is not None and whole == 0:
                due = now + frac * epoch_s
        if after is not None and due is None:
            rows = [r for r in metrics(job) if r["epoch"] > after]
            if len(rows) >= whole:
                due = now + frac * rows[whole - 1]["seconds"]
        if due is not None and now >= due:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    if proc.poll() is None:  # past the limit
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        sys.exit(f"error: an attempt ran past {limit} s; see {sweep}")
    return False


def code_version() -> str:
    """HEAD, and '+dirty' when the lab, the sweeper, train.py or conf/ differ from it (other
    people commit while this runs: a part measured across two versions says so)."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    paths = ["lenet_lab", "sweeper/src", "train.py", "conf"]
    dirty = subprocess.run([*git, "status", "--porcelain", "--", *paths], capture_output=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def trials(folder: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}").trials
    except KeyError:  # not created yet
        return []


def calibrate(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """An uninterrupted sweep of the same command: seconds to the first epoch, per epoch."""
    folder = Path(tempfile.mkdtemp(prefix="calibration_", dir=work))
    cmd = sweep_cmd(folder, "calibration", True, args.cal_epochs, args)
    print(f"[calibration] {' '.join(cmd[1:])}", flush=True)
    t0 = time.time()
    proc = launch(cmd, env, folder / "worker.log")
    first = None
    job = folder / "sweep" / "trial_0"
    while proc.poll() is None:
        if first is None and metrics(job):
            first = time.time()
        time.sleep(0.05)
    wall = time.time() - t0
    rows = metrics(job)
    if proc.returncode or len(rows) != args.cal_epochs or first is None:
        sys.exit(f"error: the calibration sweep failed (exit {proc.returncode}); see {folder}")
    epoch_s = statistics.median(r["seconds"] for r in rows)
    result = {
        "epochs": args.cal_epochs,
        "epoch_s": round(epoch_s, 3),
        "epoch_s_each": [round(r["seconds"], 3) for r in rows],
        "startup_s": round(first - t0 - rows[0]["seconds"], 3),
        "wall_s": round(wall, 2),
        "folder": str(folder),
    }
    print(f"[calibration] {result}", flush=True)
    return result


def run_side(
    side: str, args: argparse.Namespace, cal: dict[str, Any], work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """K kills of one trial's attempts, then a last attempt to the end; every kill's loss."""
    resume = SIDES[side]
    folder = Path(tempfile.mkdtemp(prefix=f"{side}_", dir=work))
    cmd = sweep_cmd(folder, side, resume, args.epochs, args)
    rng = random.Random(f"{args.seed}-{side}")
    print(f"[{side}] {' '.join(cmd[1:])}", flush=True)
    side_t0, load_before, code = time.time(), os.getloadavg(), code_version()
    attempts: list[dict[str, Any]] = []
    progress = 0  # the lineage's last finished epoch (after: where the next attempt goes on)
    sweep = folder / "sweep"
    for k in range(args.kills + 1):
        draw = None
        if k < args.kills:
            left = args.epochs - progress if resume else args.epochs
            hi = min(args.kill_max, left - 1.5)  # - 1.5: the last row may not be saved yet
            lo = min(args.kill_min, hi / 2)
            u = rng.random()
            draw = {"lo": round(lo, 3), "hi": round(hi, 3), "u": round(u, 4)}
            draw["epochs_worth"] = round(lo + (hi - lo) * u, 3)
        known = {t.number for t in trials(folder, side)}
        dirs = set(sweep.glob("trial_*"))
        t0 = time.time()
        proc = launch(cmd, env, folder / f"attempt{k}.log")
        if draw is not None and draw["hi"] > 0:
            killed = kill_after_progress(
                proc, sweep, dirs, draw["epochs_worth"], cal["epoch_s"], args.attempt_timeout
            )
        else:
            try:
                proc.wait(timeout=args.attempt_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                sys.exit(f"error: [{side}] the last attempt ran past {args.attempt_timeout} s")
            killed = False
        t_end = time.time()
        now = trials(folder, side)
        mine = [t for t in now if t.number not in known and t.state != TrialState.WAITING]
        trial = max(mine, key=lambda t: t.number) if mine else None
        job = folder / "sweep" / f"trial_{trial.number}" if trial else None
        rows = metrics(job) if job else []
        after = started_after(job) if job else None
        trained = [r for r in rows if after is not None and r["epoch"] > after]
        last_row_s = None
        if killed and trained:
            last_row_s = round(t_end - (job / "metrics.csv").stat().st_mtime, 3)
        attempt = {
            "attempt": k,
            "trial": trial.number if trial else None,
            "trial_state_after": trial.state.name if trial else None,
            "retry_of": trial.user_attrs.get("retry_of") if trial else None,
            "retries": trial.user_attrs.get("retries") if trial else None,
            "continued_from_step": trial.user_attrs.get("continued_from_step") if trial else None,
            "intermediate_max_step": max(trial.intermediate_values, default=None)
            if trial
            else None,
            "kill_draw": draw,
            "killed": killed,
            "exit_code": None if killed else proc.returncode,
            "wall_s": round(t_end - t0, 3),
            "started_after": after,
            "last_epoch": trained[-1]["epoch"] if trained else None,
            "epochs_trained": [r["epoch"] for r in trained],
            "trained_s": round(sum(r["seconds"] for r in trained), 3),
            "kill_s_after_last_epoch": last_row_s,
            "states_after": [t.state.name for t in now],
        }
        attempts.append(attempt)
        if trained:
            progress = trained[-1]["epoch"]
        print(
            f"[{side}] attempt {k}: trial {attempt['trial']}, started after "
            f"{after}, trained {attempt['epochs_trained']}, "
            f"{'killed' if killed else 'exit ' + str(proc.returncode)} at {attempt['wall_s']} s",
            flush=True,
        )
        if not killed:
            break
        time.sleep(GRACE_S + 1.5)  # past the grace period: the next worker finds it stale
    result = summarize_side(side, attempts, folder, args)
    result.update(
        {
            "command": " ".join(cmd[1:]),
            "side_wall_s": round(time.time() - side_t0, 1),
            "code": [code, code_version()],
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "folder": str(folder),
            "attempts": attempts,
        }
    )
    return result


def summarize_side(
    side: str, attempts: list[dict[str, Any]], folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Each kill's epochs and seconds lost; the final trial's checks."""
    kills, problems = [], []
    for i, a in enumerate(attempts):
        if not a["killed"]:
            continue
        nxt = next((b for b in attempts[i + 1 :] if b["started_after"] is not None), None)
        if nxt is None:
            problems.append(f"attempt {i}: no later attempt started training")
            continue
        resumed = nxt["started_after"]
        finished = a["last_epoch"] if a["last_epoch"] is not None else resumed
        kept = 0.0
        if a["started_after"] is not None:
            job = folder / "sweep" / f"trial_{a['trial']}"
            kept = sum(
                r["seconds"] for r in metrics(job) if a["started_after"] < r["epoch"] <= resumed
            )
        kills.append(
            {
                "attempt": i,
                "trial": a["trial"],
                "kill_epochs_worth": a["kill_draw"]["epochs_worth"],
                "finished": finished,
                "resumed_after": resumed,
                "epochs_lost": finished - resumed,
                "seconds_lost": round(a["wall_s"] - kept, 2),
                "next_attempt": nxt["attempt"],
            }
        )
    final = attempts[-1]
    study = trials(folder, side)
    states = {t.number: t.state.name for t in study}
    last = next((t for t in study if t.number == final["trial"]), None)
    if final["killed"] or last is None or last.state != TrialState.COMPLETE:
        problems.append(f"the last attempt's trial is not COMPLETE: {final}")
    left = [n for n, s in states.items() if s in ("RUNNING", "WAITING")]
    if left:
        problems.append(f"trials left RUNNING/WAITING: {left}")
    if sum(s == "COMPLETE" for s in states.values()) != 1:
        problems.append(f"not exactly one COMPLETE trial: {states}")
    first = study[0].number if study else None
    for t in study[1:]:
        if t.user_attrs.get("retry_of") != first:
            problems.append(f"trial {t.number} is not a continuation of trial {first}")
    resumed_from = last.user_attrs.get("resumed_from") if last else None
    epochs_run = last.user_attrs.get("epochs_run") if last else None
    if epochs_run != args.epochs:
        problems.append(f"the final trial's epochs_run is {epochs_run}, not {args.epochs}")
    # the points the attempts that went on to save a state (or ended the run) continued after
    logged = [
        a["started_after"]
        for a in attempts
        if a["started_after"] and (a["epochs_trained"] or not a["killed"])
    ]
    if not SIDES[side] and (resumed_from or any(a["started_after"] for a in attempts)):
        problems.append(f"trainer.resume=false, yet an attempt continued: {resumed_from}")
    if len(kills) < args.kills:
        problems.append(f"{len(kills)} kills measured, {args.kills} asked")
    rows = metrics(folder / "sweep" / f"trial_{final['trial']}") if last else []
    if [r["epoch"] for r in rows] != list(range(1, args.epochs + 1)):
        problems.append(f"the final metrics.csv has epochs {[r['epoch'] for r in rows]}")
    lost = [k["epochs_lost"] for k in kills] or [0]
    secs = [k["seconds_lost"] for k in kills] or [0.0]
    trained = sum(len(a["epochs_trained"]) for a in attempts)
    return {
        "resume": SIDES[side],
        "kills": kills,
        "epochs_lost_mean": round(statistics.mean(lost), 2),
        "epochs_lost_max": max(lost),
        "seconds_lost_mean": round(statistics.mean(secs), 1),
        "seconds_lost_max": round(max(secs), 1),
        "seconds_lost_total": round(sum(secs), 1),
        "epochs_trained_total": trained,
        "epochs_wasted": trained - args.epochs,
        "attempts_wall_s": round(sum(a["wall_s"] for a in attempts), 1),
        "final_trial": {
            "number": final["trial"],
            "state": last.state.name if last else None,
            "value": last.value if last else None,
            "epochs_run": epochs_run,
            "resumed_from": resumed_from,
            "resumed_from_matches_logs": resumed_from == logged,
            "retries": last.user_attrs.get("retries") if last else None,
            "val_acc": [r["val_acc"] for r in rows],
        },
        "trial_states": states,
        "problems": problems,
    }


def checkpoint_cost(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """``resume.save`` against the epoch, on a real run of the full data in this process."""
    import torch
    from hydra import compose, initialize_config_dir

    from lenet_lab import resume
    from lenet_lab.run import train

    overrides = [
        *data_overrides(args.smoke, full=True),
        *FIXED,
        "early_stopping=none",
        f"trainer.epochs={args.ckpt_epochs}",
        f"trainer.num_threads={args.threads}",
        "trainer.device=cpu",
        "trainer.progress_bar=false",
        "trainer.save_samples=false",
        "trainer.save_curves=false",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides)
    out = Path(tempfile.mkdtemp(prefix="checkpoint_", dir=work))
    original, in_run, held = resume.save, [], {}

    def timed_save(state_dir: Path, run: Any, callbacks: Any, generator: Any) -> None:
        t0 = time.perf_counter()
        original(state_dir, run, callbacks, generator)
        in_run.append(time.perf_counter() - t0)
        held["state"] = (run, callbacks, generator)

    print(f"[checkpoint] train {' '.join(overrides)}", flush=True)
    started = time.time()
    resume.save = timed_save
    try:
        train(cfg, out / "run")
    finally:
        resume.save = original
    epoch_s = [r["seconds"] for r in metrics(out / "run")]
    run, callbacks, generator = held["state"]
    target, repeated = out / "repeated", []
    for _ in range(args.ckpt_reps):
        t0 = time.perf_counter()
        resume.save(target, run, callbacks, generator)
        repeated.append(time.perf_counter() - t0)
    loads = []
    for _ in range(min(args.ckpt_reps, 20)):
        t0 = time.perf_counter()
        resume.load(target, cfg, torch.device("cpu"))
        loads.append(time.perf_counter() - t0)
    save_s, mean_epoch = statistics.median(repeated), statistics.mean(epoch_s)
    result = {
        "code": code_version(),
        "how": (
            "lenet_lab.run.train in this process on the full data (hold-out), with "
            "lenet_lab.resume.save wrapped in a timer (in_run_save_s: each epoch's save, then "
            "the ended run's); then resume.save called repetitions times on that run's state "
            "(model, optimizer, callbacks, RNGs, rows: written to a temp file, fsync'ed, "
            "renamed) into a folder on the same disk; ratio = median save / mean epoch seconds "
            "(metrics.csv: train + val of the epoch, the save excluded)"
        ),
        "overrides": overrides,
        "epochs": len(epoch_s),
        "epoch_s": [round(s, 3) for s in epoch_s],
        "mean_epoch_s": round(mean_epoch, 3),
        "in_run_save_s": [round(s, 4) for s in in_run],
        "repetitions": len(repeated),
        "save_s_median": round(save_s, 5),
        "save_s_p90": round(sorted(repeated)[int(0.9 * (len(repeated) - 1))], 5),
        "save_s_max": round(max(repeated), 5),
        "load_s_median": round(statistics.median(loads), 5),
        "state_bytes": (target / resume.STATE_FILE).stat().st_size,
        "ratio": round(save_s / mean_epoch, 5),
        "ratio_fastest_epoch": round(save_s / min(epoch_s), 5),  # the least flattering
        "in_run_ratio": round(statistics.mean(in_run[: len(epoch_s)]) / mean_epoch, 5),
        "target_ratio": TARGET_CHECKPOINT_RATIO,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.time() - started, 1),
    }
    result["target_met"] = result["ratio"] <= TARGET_CHECKPOINT_RATIO
    print(f"[checkpoint] save {save_s * 1e3:.1f} ms, epoch {mean_epoch:.2f} s", flush=True)
    return result


def report(result: dict[str, Any]) -> None:
    """The table and the targets."""
    cols = ["side", "kills", "lost_mean", "lost_max", "s_lost_mean", "s_lost_max", "trained"]
    print("\n" + "".join(f"{c:>13}" for c in cols) + "   epochs lost per kill")
    for side, r in result.get("sides", {}).items():
        values = [
            side,
            len(r["kills"]),
            r["epochs_lost_mean"],
            r["epochs_lost_max"],
            r["seconds_lost_mean"],
            r["seconds_lost_max"],
            r["epochs_trained_total"],
        ]
        lost = [k["epochs_lost"] for k in r["kills"]]
        print("".join(f"{v!s:>13}" for v in values) + f"   {lost}")
    after = result.get("sides", {}).get("after")
    if after:
        ok = after["epochs_lost_max"] <= TARGET_EPOCHS_LOST
        print(
            f"target: work lost per interruption <= {TARGET_EPOCHS_LOST:g} epoch after (before: "
            f"all of it): max {after['epochs_lost_max']} -> {'met' if ok else 'MISSED'}"
        )
    ck = result.get("checkpoint")
    if ck:
        print(
            f"target: checkpoint <= {TARGET_CHECKPOINT_RATIO:.0%} of an epoch: save "
            f"{ck['save_s_median'] * 1e3:.1f} ms (median of {ck['repetitions']}) / epoch "
            f"{ck['mean_epoch_s']:.2f} s = {ck['ratio']:.2%} -> "
            f"{'met' if ck['target_met'] else 'MISSED'}"
        )
    for side, r in result.get("sides", {}).items():
        for problem in r["problems"]:
            print(f"PROBLEM [{side}]: {problem}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with the smoke mode's defaults filled in."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--smoke", action="store_true", help="tiny data, 2 kills, few epochs")
    p.add_argument("--epochs", type=int, help="epochs of the trial (default 30; smoke 8)")
    p.add_argument("--kills", type=int, help="kills per side (default 5; smoke 2)")
    p.add_argument("--kill-min", type=float, default=1.5, help="epochs' worth (default 1.5)")
    p.add_argument("--kill-max", type=float, help="epochs' worth (default 9.5; smoke 3.5)")
    p.add_argument("--seed", type=int, default=25, help="of the kill moments (default 25)")
    p.add_argument("--threads", type=int, default=2, help="trainer.num_threads (default 2)")
    p.add_argument("--cal-epochs", type=int, default=3, help="calibration epochs (default 3)")
    p.add_argument("--ckpt-epochs", type=int, default=3, help="part 2's epochs (default 3)")
    p.add_argument("--ckpt-reps", type=int, default=200, help="save repetitions (default 200)")
    p.add_argument("--attempt-timeout", type=float, default=3600, help="last attempt (s)")
    p.add_argument("--work", type=Path, help="folder for studies, sweeps, logs (default: tmp)")
    p.add_argument("--json", type=Path, help="default benchmarks/results/interruptions.json")
    p.add_argument("--fresh", action="store_true", help="ignore the parts the JSON holds")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (8 if args.smoke else 30)
    args.kills = args.kills if args.kills is not None else (2 if args.smoke else 5)
    args.kill_max = args.kill_max or (3.5 if args.smoke else 9.5)
    if args.smoke:
        args.ckpt_epochs, args.ckpt_reps, args.cal_epochs = 2, 20, 2
    return args


def start_result(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    """The JSON at ``path`` when it was measured with these settings (its parts are kept),
    else a new one: the settings and the machine."""
    settings = {
        k: getattr(args, k)
        for k in ("smoke", "epochs", "kills", "kill_min", "kill_max", "seed", "threads")
    }
    settings.update(
        {
            "cal_epochs": args.cal_epochs,
            "ckpt_epochs": args.ckpt_epochs,
            "ckpt_reps": args.ckpt_reps,
            "heartbeat_interval_s": HEARTBEAT_S,
            "grace_period_s": GRACE_S,
            "params": PARAMS,
            "data": data_overrides(args.smoke, full=False),
        }
    )
    result: dict[str, Any] = {}
    if path.is_file() and not args.fresh:
        old = json.loads(path.read_text())
        if old.get("settings") == settings:
            result = old
            print(f"continuing {path}: has {[k for k in ('calibration', 'sides') if k in old]}")
    result.setdefault("settings", settings)
    result.setdefault(
        "machine",
        {
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "code_at_start": code_version(),
            "note": "shared 2-core VM, measured at nice 5: see each part's loadavg",
        },
    )
    result.setdefault("sides", {})
    return result


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench_interruptions_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.smoke:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import ENV_ROOT, write_tiny_dataset

        env[ENV_ROOT] = str(write_tiny_dataset(work / "data", n_train=2048, n_test=128))
        os.environ[ENV_ROOT] = env[ENV_ROOT]
    elif not env.get("FASHION_MNIST_ROOT"):
        sys.exit("error: set FASHION_MNIST_ROOT to a folder holding FashionMNIST/raw/")
    default = work if args.smoke else ROOT / "benchmarks" / "results"
    path = args.json or default / "interruptions.json"
    result = start_result(args, path)
    t_start = time.time()

    def save() -> None:
        result["sides"] = {s: result["sides"][s] for s in SIDES if s in result["sides"]}
        result["targets"] = {
            "epochs_lost_per_interruption_after": TARGET_EPOCHS_LOST,
            "checkpoint_ratio": TARGET_CHECKPOINT_RATIO,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}", flush=True)

    if "calibration" not in result:
        result["calibration"] = calibrate(args, work, env)
        save()
    for side in SIDES:
        if side not in result["sides"]:
            result["sides"][side] = run_side(side, args, result["calibration"], work, env)
            save()
    if "checkpoint" not in result:
        result["checkpoint"] = checkpoint_cost(args, work)
        save()
    before, after = (result["sides"][s]["final_trial"]["val_acc"] for s in SIDES)
    result["same_curve_both_sides"] = before == after
    result["wall_s_total"] = round(
        result["calibration"]["wall_s"]
        + sum(r["side_wall_s"] for r in result["sides"].values())
        + result["checkpoint"]["wall_s"],
        1,
    )
    save()
    report(result)
    print(f"this invocation: {time.time() - t_start:.0f} s; studies, sweeps and logs in {work}")
    if any(r["problems"] for r in result["sides"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

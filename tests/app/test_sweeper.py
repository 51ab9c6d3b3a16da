"""Real Optuna sweeps through ``train.py -m`` on tiny data: two phases, resume, failures,
pruning, kill-and-resume, parallel workers (SQLite here, PostgreSQL in test_postgres.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.artifacts import get_all_artifact_meta
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from conftest import ENV_ROOT, REPO_ROOT
from lab_optuna._keys.config import IMPORTANCE_EVALUATORS

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST = ("trainer.epochs=2", "hydra.sweeper.sampler.n_startup_trials=3", "data.holdout_size=128")
#: The sweeps write importances.csv only where a test reads it (scikit-learn's import: ~2 s).
ALL_IMPORTANCES = f"hydra.sweeper.importances=[{','.join(IMPORTANCE_EVALUATORS)}]"


def sweep_cmd(search: str, sweep_dir: Path, storage: str, *overrides: str) -> list[str]:
    # the artifact store of a database that is no SQLite file would default to the checkout's
    # multirun/artifacts (these sweeps run from the repository root): keep it in the test's dir
    store = (
        ()
        if storage.startswith("sqlite:")
        else (f"hydra.sweeper.artifacts.dir={sweep_dir / 'artifacts'}",)
    )
    return [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        f"hparams_search={search}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
        *FAST,
        *store,
        *(() if ALL_IMPORTANCES in overrides else ("hydra.sweeper.importances=[]",)),
        *overrides,
    ]


def env_for(data_root: Path) -> dict[str, str]:
    env = os.environ.copy()
    env[ENV_ROOT] = str(data_root)
    return env


def run_sweep(search, sweep_dir, storage, data_root, *overrides, timeout=300):
    proc = subprocess.run(
        sweep_cmd(search, sweep_dir, storage, *overrides),
        cwd=REPO_ROOT,
        env=env_for(data_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc


def study(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'optuna.db'}"


@pytest.fixture(scope="module")
def two_phases(tmp_path_factory, tiny_data_factory):
    """Phase 1 (3 trials) then phase 2 (4 trials) in one storage, shared by several tests."""
    tmp = tmp_path_factory.mktemp("phases")
    url = f"sqlite:///{tmp / 'optuna.db'}"
    data = tiny_data_factory()
    p1 = run_sweep(
        "phase1_flat", tmp / "phase1_flat", url, data, "hydra.sweeper.n_trials=3", ALL_IMPORTANCES
    )
    assert p1.returncode == 0, p1.stderr[-3000:]
    p2 = run_sweep("phase2_flat", tmp / "phase2_flat", url, data, "hydra.sweeper.n_trials=4")
    assert p2.returncode == 0, p2.stderr[-3000:]
    return tmp, url, data, p2


def test_phase1_records_trials_and_artifacts(two_phases):
    tmp, url, _, _ = two_phases
    trials = study(url, "phase1_flat").trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        job = tmp / "phase1_flat" / f"trial_{t.number}"
        for name in ("metrics.csv", "summary.json", "curves.png", "best.pt", "trial.json"):
            assert (job / name).is_file(), job / name
        record = json.loads((job / "trial.json").read_text())
        assert record["number"] == t.number and record["study"] == "phase1_flat"
        assert record["params"]["optimizer"] == t.params["optimizer"]
        summary = json.loads((job / "summary.json").read_text())
        assert summary["best_val_acc"] == pytest.approx(t.value)
        # the run's record in the artifact store beside optuna.db (optuna-dashboard shows it)
        metas = get_all_artifact_meta(t, storage=RDBStorage(url))
        names = {"summary.json", "metrics.csv", "curves.png", "best.pt"}
        assert {m.filename for m in metas} == names
        assert all((tmp / "artifacts" / m.artifact_id).is_file() for m in metas)
        assert set(t.params) == {
            "optimizer",
            "optimizer.lr",
            "data.batch_size",
            "scheduler",
            "model",
        }
    results = yaml.safe_load((tmp / "phase1_flat" / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(study(url, "phase1_flat").best_value)
    importances = pd.read_csv(tmp / "phase1_flat" / "importances.csv")
    assert list(importances.columns) == ["param", "importance", "evaluator", "objective"]
    assert set(importances["param"]) <= set(trials[0].params)


def test_phase2_pins_phase1_best(two_phases):
    tmp, url, _, _ = two_phases
    best = study(url, "phase1_flat").best_trial.params
    p2 = study(url, "phase2_flat")
    assert len(p2.trials) == 4
    for t in p2.trials:
        assert not set(best) & set(t.params), "pinned keys must not be searched"
        for key, value in best.items():
            assert str(t.user_attrs[key]) == str(value)
        job = tmp / "phase2_flat" / f"trial_{t.number}"
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        choices = yaml.safe_load((job / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"][
            "choices"
        ]
        assert choices["optimizer"] == best["optimizer"]
        assert cfg["optimizer"]["lr"] == pytest.approx(best["optimizer.lr"])
        assert cfg["data"]["batch_size"] == best["data.batch_size"]
    pinned = yaml.safe_load((tmp / "phase2_flat" / "pinned.yaml").read_text())
    assert pinned == best


def test_sweep_output_is_plain_text(two_phases):
    """Optuna's messages go through Hydra's logging: no colour escape codes in logs."""
    tmp, _, _, p2 = two_phases
    console = p2.stdout + p2.stderr
    assert "study" in console and "\x1b[" not in console
    for log_file in (tmp / "phase2_flat").rglob("*.log"):
        assert "\x1b[" not in log_file.read_text(), log_file


def test_phase2_conditional_parameters(two_phases):
    _, url, _, _ = two_phases
    for t in study(url, "phase2_flat").trials:
        reg = t.params["regularizer"]
        assert ("regularizer.coef" in t.params) == (reg in ("l1", "l2"))
        assert ("regularizer.p" in t.params) == (reg == "dropout")
        plateau = study(url, "phase1_flat").best_trial.params["scheduler"] == "plateau"
        assert ("scheduler.factor" in t.params) == plateau


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_command_line_wins_over_pins(two_phases, tmp_path):
    _, url, data, _ = two_phases
    proc = run_sweep(
        "phase2_flat",
        tmp_path / "p2b",
        url,
        data,
        "hydra.sweeper.n_trials=1",
        "hydra.sweeper.study_name=phase2_cli",
        "optimizer.lr=0.0123",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (t,) = study(url, "phase2_cli").trials
    assert float(t.user_attrs["optimizer.lr"]) == pytest.approx(0.0123)
    assert "optimizer.lr" not in yaml.safe_load((tmp_path / "p2b" / "pinned.yaml").read_text())


def test_phase2_without_phase1_stops_clearly(tmp_path, sqlite_url, tiny_data_root):
    proc = run_sweep("phase2_flat", tmp_path / "p2", sqlite_url, tiny_data_root)
    assert proc.returncode != 0
    assert "study 'phase1_flat'" in proc.stderr and "run its sweep first" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (proc.stdout + proc.stderr).count("run its sweep first") == 1
    assert not list((tmp_path / "p2").glob("trial_*"))


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_rerun_continues_study_without_replays_or_overwrites(two_phases):
    tmp, url, data, _ = two_phases
    first = tmp / "phase1_flat" / "trial_0" / "summary.json"
    before = (first.stat().st_mtime_ns, first.read_text())
    old = [t.params for t in study(url, "phase1_flat").trials]
    proc = run_sweep(
        "phase1_flat",
        tmp / "phase1_flat",
        url,
        data,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.study_name=phase1_flat",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = study(url, "phase1_flat").trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert all(t.params not in old for t in trials[3:]), "resumed TPE replayed old points"
    assert (first.stat().st_mtime_ns, first.read_text()) == before
    assert sorted(p.name for p in (tmp / "phase1_flat").glob("trial_*")) == [
        f"trial_{i}" for i in range(5)
    ]


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_diverging_trials_fail_but_sweep_goes_on(tmp_path, sqlite_url, tiny_data_root):
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "div",
        sqlite_url,
        tiny_data_root,
        "hydra.sweeper.n_trials=6",
        "optimizer=sgd",
        "data.batch_size=64",
        "optimizer.lr=choice(0.01,1000000.0)",
        "scheduler=none",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = study(sqlite_url, "phase1_flat").trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert failed and complete and len(trials) == 6
    assert all(t.params["optimizer.lr"] == 1e6 for t in failed)
    assert all("diverged" in t.user_attrs["fail_reason"] for t in failed)
    summary = json.loads(
        (tmp_path / "div" / f"trial_{failed[0].number}" / "summary.json").read_text()
    )
    assert summary["status"] == "diverged"


def test_bad_fixed_value_stops_the_sweep_before_any_trial(tmp_path, sqlite_url, tiny_data_root):
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "bad",
        sqlite_url,
        tiny_data_root,
        "hydra.sweeper.n_trials=5",
        "regularizer=dropout",
        "regularizer.p=1.5",
    )
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: regularizer.p must be in [0, 1), got 1.5"], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "bad").glob("trial_*"))
    assert optuna.get_all_study_summaries(sqlite_url) == []  # no study, no FAIL trials


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ("+hydra.sweeper.params.optimizer.lrr='tag(log, interval(1e-4, 1))'",),
            "error: hydra.sweeper.params.optimizer.lrr: not a key of the app's config "
            "(did you mean optimizer.lr?)",
        ),
        (
            ("optimizer=choice(sgd,adamm)",),
            "error: optimizer=adamm: not an option of the config group optimizer "
            "(options: adam, adamw, sgd)",
        ),
    ],
    ids=["key-typo", "group-option-typo"],
)
def test_searched_key_typo_stops_the_sweep_before_any_trial(
    tmp_path, sqlite_url, tiny_data_root, overrides, message
):
    proc = run_sweep("phase1_flat", tmp_path / "typo", sqlite_url, tiny_data_root, *overrides)
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [message], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "typo").glob("trial_*"))
    assert optuna.get_all_study_summaries(sqlite_url) == []


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_key_of_some_group_options_only_is_searched(tmp_path, sqlite_url, tiny_data_root):
    # regularizer.coef exists under l1 and l2 only (phase 2 searches such keys): accepted
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "cond",
        sqlite_url,
        tiny_data_root,
        "hydra.sweeper.n_trials=0",
        "regularizer=choice(none,l1,l2,dropout)",
        "regularizer.coef=tag(log,interval(1e-5,1e-2))",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "error:" not in proc.stderr


@pytest.mark.slow  # a lab sweep of several trials (the sweeper suite: a fast form): test-all
def test_all_trials_failing_stops_with_clear_message(tmp_path, sqlite_url, tiny_data_root):
    # every searched value is invalid: only the trials can tell
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "bad",
        sqlite_url,
        tiny_data_root,
        "hydra.sweeper.n_trials=5",
        "regularizer=dropout",
        "regularizer.p=choice(1.5,2.0)",
    )
    assert proc.returncode != 0
    assert "crashed" in proc.stderr and "regularizer.p must be in [0, 1)" in proc.stderr
    trials = study(sqlite_url, "phase1_flat").trials
    assert len(trials) == 3  # stopped once the failure rate was measured (3 trials)
    assert all(t.state == TrialState.FAIL for t in trials)
    # the failing trial's overrides are logged
    assert "regularizer.p=" in proc.stdout + proc.stderr


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_pruning_records_pruned_trials(tmp_path, sqlite_url, tiny_data_root):
    """Two good trials, then two hopeless ones: the median pruner stops the latter after its
    warm-up (2 epochs), across jobs reporting to the study."""
    seeded = optuna.create_study(study_name="phase1_flat", storage=sqlite_url, direction="maximize")
    for lr in (0.003, 0.003, 0.000001, 0.000001):
        seeded.enqueue_trial({"optimizer.lr": lr})
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "prune",
        sqlite_url,
        tiny_data_root,
        "hydra.sweeper.n_trials=4",
        "optimizer=adam",
        "scheduler=none",
        "early_stopping=none",
        "data.batch_size=32",
        "model=lenet5",
        "optimizer.lr=choice(0.000001,0.003)",  # hopeless vs good
        "trainer.epochs=5",
        "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=2",
        "hydra.sweeper.pruner.n_min_trials=1",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = study(sqlite_url, "phase1_flat").trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert [t.number for t in pruned] == [2, 3], [(t.params, t.state) for t in trials]
    assert all(t.params["optimizer.lr"] == 1e-6 for t in pruned)
    assert all(len(t.intermediate_values) < 5 for t in pruned)
    summary = json.loads(
        (tmp_path / "prune" / f"trial_{pruned[0].number}" / "summary.json").read_text()
    )
    assert summary["status"] == "pruned"


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _states(url: str, name: str) -> list[TrialState]:
    try:
        return [t.state for t in study(url, name).trials]
    except KeyError:
        return []


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_sigkill_then_resume_loses_nothing(tmp_path, sqlite_url, tiny_data_factory):
    data = tiny_data_factory(n_train=2048, n_test=256)
    slow = (
        "trainer.epochs=12",
        "early_stopping=none",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=2",
        "hydra/sweeper/pruner=none",
    )
    cmd = sweep_cmd("phase1_flat", tmp_path / "kill", sqlite_url, "hydra.sweeper.n_trials=5", *slow)
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env_for(data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(
            lambda: (
                TrialState.COMPLETE in _states(sqlite_url, "phase1_flat")
                and _states(sqlite_url, "phase1_flat")[-1] == TrialState.RUNNING
                and len(study(sqlite_url, "phase1_flat").trials[-1].intermediate_values) >= 2
            ),
            480,
            "one complete trial and one running for 2 epochs",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = study(sqlite_url, "phase1_flat").trials
    done = [t for t in before if t.state == TrialState.COMPLETE]
    killed = before[-1]
    assert killed.state == TrialState.RUNNING
    time.sleep(3.5)  # longer than the grace period
    resumed = run_sweep(
        "phase1_flat",
        tmp_path / "kill",
        sqlite_url,
        data,
        "hydra.sweeper.n_trials=1",
        *slow,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = {t.number: t for t in study(sqlite_url, "phase1_flat").trials}
    for t in done:  # finished work intact
        assert after[t.number].state == TrialState.COMPLETE
        assert after[t.number].value == t.value
        assert (tmp_path / "kill" / f"trial_{t.number}" / "summary.json").is_file()
    stale = after[killed.number]
    assert stale.state == TrialState.FAIL
    assert "continued by a new trial" in resumed.stdout + resumed.stderr
    requeued = after[max(after)]
    assert requeued.number > killed.number and requeued.params == killed.params
    assert requeued.user_attrs["retry_of"] == killed.number
    assert "stale" in requeued.user_attrs["retry_reason"]
    # the killed trial's run continued from its state: at most the epoch it was in is lost
    (after_epoch,) = requeued.user_attrs["resumed_from"]
    assert after_epoch >= len(killed.intermediate_values) - 1
    assert requeued.state == TrialState.COMPLETE and requeued.user_attrs["epochs_run"] == 12
    assert sorted(requeued.intermediate_values) == list(range(1, 13))


def _default_sigint() -> None:  # a test run started with SIGINT ignored must not pass it on
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_after_first_epoch(cmd: list[str], data: Path, job_dir: Path) -> tuple[int, str]:
    """Run the sweep ``cmd``; send SIGINT once ``job_dir`` has logged an epoch."""
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env_for(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        metrics = job_dir / "metrics.csv"
        _wait_for(
            lambda: metrics.is_file() and len(metrics.read_text().splitlines()) > 1,
            120,
            f"the first epoch of {job_dir.name}",
        )
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, out


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_sigint_marks_trial_and_says_how_to_resume(tmp_path, sqlite_url, tiny_data_factory):
    """Ctrl-C in a lab trial: the trial is FAIL (interrupted) and queued to continue, and the
    lab's own record says so (summary.json status). That finished trials stay COMPLETE is the
    sweeper's behaviour, tested once in its suite (test_plugin: a signal keeps finished trials)."""
    data = tiny_data_factory(n_train=4096, n_test=256)
    cmd = sweep_cmd(
        "phase1_flat",
        tmp_path / "int",
        sqlite_url,
        "hydra.sweeper.n_trials=3",
        "trainer.epochs=50",
        "early_stopping=none",
        "hydra/sweeper/pruner=none",
    )
    returncode, out = _ctrl_c_after_first_epoch(cmd, data, tmp_path / "int" / "trial_0")
    assert returncode != 0
    assert "Resume with the same command" in out
    t, continuation = study(sqlite_url, "phase1_flat").trials  # queued to continue on resume
    assert t.state == TrialState.FAIL and "interrupted" in t.user_attrs["fail_reason"]
    assert continuation.state == TrialState.WAITING and continuation.params == t.params
    assert continuation.user_attrs["retry_of"] == 0
    summary = json.loads((tmp_path / "int" / "trial_0" / "summary.json").read_text())
    assert summary["status"] == "interrupted"


def check_two_workers(storage: str, sweep_dir: Path, data_root: Path) -> None:
    """Two concurrent workers, 3 trials each, one study: 6 distinct trials and job dirs."""
    cmds = [
        sweep_cmd(
            "phase1_flat",
            sweep_dir,
            storage,
            "hydra.sweeper.n_trials=3",
            "hydra/sweeper/pruner=none",
        )
        for _ in range(2)
    ]
    procs = [
        subprocess.Popen(
            c,
            cwd=REPO_ROOT,
            env=env_for(data_root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for c in cmds
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    ran = [set(re.findall(r"\] trial (\d+) COMPLETE", out)) for out in outs]
    assert len(ran[0]) == len(ran[1]) == 3 and not ran[0] & ran[1]  # each its own trials
    trials = study(storage, "phase1_flat").trials
    assert sorted(t.number for t in trials) == list(range(6))  # total = sum of both workers
    assert all(t.state == TrialState.COMPLETE for t in trials)
    dirs = sorted(p.name for p in sweep_dir.glob("trial_*"))
    assert dirs == sorted(f"trial_{i}" for i in range(6))  # no job dir shared or overwritten


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_two_workers_share_one_sqlite_study(tmp_path, sqlite_url, tiny_data_root):
    check_two_workers(sqlite_url, tmp_path / "w", tiny_data_root)


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_journal_storage_two_phases_two_workers(tmp_path, tiny_data_root):
    """A journal file (a shared filesystem, no database server): phase 1 then phase 2, each
    by two workers at once; phase 2 pins phase 1's best read from the journal."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    log = tmp_path / "shared" / "study.log"
    url = f"journal:///{log}"
    for phase in ("phase1_flat", "phase2_flat"):
        procs = [
            subprocess.Popen(
                sweep_cmd(
                    phase, tmp_path / phase, url, "hydra.sweeper.n_trials=2", "trainer.epochs=1"
                ),
                cwd=REPO_ROOT,
                env=env_for(tiny_data_root),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=300)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs[0][-2000:] + outs[1][-2000:]
    storage = JournalStorage(JournalFileBackend(str(log)))
    p1, p2 = (
        optuna.load_study(study_name=n, storage=storage) for n in ("phase1_flat", "phase2_flat")
    )
    for s in (p1, p2):
        assert sorted(t.number for t in s.trials) == list(range(4))
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in s.trials)
    assert p2.user_attrs["pinned"] and set(p2.user_attrs["pinned"]) <= set(p1.best_trial.params)
    assert sorted(p.name for p in (tmp_path / "phase2_flat").glob("trial_*")) == [
        f"trial_{i}" for i in range(4)
    ]


@pytest.mark.integration
def test_phase1_two_trials_on_real_subset(tmp_path, sqlite_url, real_data_root):
    proc = run_sweep(
        "phase1_flat",
        tmp_path / "real",
        sqlite_url,
        real_data_root,
        "hydra.sweeper.n_trials=2",
        "data=fashion_mnist_subset",
        "trainer.epochs=2",
        "data.holdout_size=2000",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = study(sqlite_url, "phase1_flat")
    assert len(s.trials) == 2 and s.best_value > 0.6
    assert {t.user_attrs["val_split"] for t in s.trials} == {"holdout"}


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_default_storage_is_sqlite_under_multirun(tmp_path, tiny_data_root):
    """No storage given: multirun/optuna.db and multirun/phase1/ relative to the launch dir."""
    cmd = [
        sys.executable,
        str(REPO_ROOT / "train.py"),
        "-m",
        "hparams_search=phase1_flat",
        "hydra.sweeper.n_trials=1",
        *FAST,
    ]
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env_for(tiny_data_root), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    url = f"sqlite:///{tmp_path / 'multirun' / 'optuna.db'}"
    assert len(study(url, "phase1_flat").trials) == 1
    assert (tmp_path / "multirun" / "phase1_flat" / "trial_0" / "summary.json").is_file()


def test_slurm_launcher_composes_with_postgres_storage(compose_cfg):
    cfg = compose_cfg(
        "hparams_search=phase1_flat",
        "hydra/launcher=slurm",
        "hydra.sweeper.storage=postgresql://u:p@db/optuna",
        "hydra.sweeper.n_jobs=8",
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 60
    assert cfg.hydra.sweeper.storage.startswith("postgresql://")
    assert cfg.hydra.sweeper._target_.endswith("LabOptunaSweeper")


@pytest.mark.parametrize("pruner", ["none", "median", "hyperband", "lab_hyperband"])
def test_a_preset_pruner_can_be_replaced_whole(compose_cfg, pruner):
    """The presets' pruner settings live in their own option (lab_median): choosing another
    pruner leaves none of its keys behind, and it builds."""
    from hydra.utils import instantiate

    cfg = compose_cfg(
        "hparams_search=phase1_flat", f"hydra/sweeper/pruner={pruner}", return_hydra_config=True
    )
    built = instantiate(cfg.hydra.sweeper.pruner)
    assert isinstance(built, optuna.pruners.BasePruner)
    if pruner == "lab_hyperband":
        assert cfg.hydra.sweeper.pruner.max_resource == cfg.trainer.epochs


def test_phases_select_on_the_holdout_only(two_phases):
    """A search preset never reads the test split: every phase trial validated on the
    hold-out (summary.json and the trial's user attributes say so)."""
    tmp, url, _, _ = two_phases
    for name in ("phase1_flat", "phase2_flat"):
        for t in study(url, name).trials:
            summary = json.loads((tmp / name / f"trial_{t.number}" / "summary.json").read_text())
            assert summary["val_split"] == "holdout" and t.user_attrs["val_split"] == "holdout"


@pytest.mark.slow  # a lab sweep of several trials: make test-all
def test_final_retrains_the_best_trial_with_seeds_on_the_test_split(two_phases):
    tmp, url, data, _ = two_phases
    cmd = [
        c
        for c in sweep_cmd("final", tmp / "final", url, "hydra.sweeper.pin_from=phase2_flat")
        if not c.startswith(("trainer.epochs=", "hydra.sweeper.sampler."))
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env_for(data), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = study(url, "phase2_flat").best_trial
    expected = {**study(url, "phase2_flat").user_attrs["pinned"], **best.params}
    trials = study(url, "final").trials
    assert sorted(t.params["seed"] for t in trials) == [1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    for t in trials:
        job = tmp / "final" / f"trial_{t.number}"
        summary = json.loads((job / "summary.json").read_text())
        assert (
            summary["val_split"] == "test"
            and summary["max_epochs"] == best.user_attrs["best_epoch"]
        )
        assert t.value == summary["final_val_acc"]  # the last epoch, nothing selected
        assert summary["config"]["early_stopping"].get("_target_") is None  # no early stopping
        for key, value in expected.items():
            if key != "early_stopping.patience":
                assert str(t.user_attrs[key]) == str(value), key


def test_the_search_presets_compose(compose_cfg):
    """phase1/phase2 (the search): phase 1's and phase 2's spaces, a 20-epoch cap, Hyperband on
    the epochs (max_resource = the cap, rungs 2, 6, 18 off the cap), no early stopping, a warm
    start of searched keys and the laptop budget of 510 s a phase (pruned at the deadline);
    final retrains phase2's best on the test split. phase1_flat/phase2_flat: the same spaces
    (+ the early stopping patience), 15 epochs, the median pruner with its benchmarked
    n_min_trials, no time limit; the plugin_like presets: no pruning, batches, a fixed 15-epoch
    cap, no warm start, the same TPE; joint: both spaces in one study, both phases' time."""
    from hydra.utils import instantiate

    def composed(preset: str):
        return compose_cfg(f"hparams_search={preset}", return_hydra_config=True)

    flat = {p: composed(f"{p}_flat") for p in ("phase1", "phase2")}
    for cfg in flat.values():
        assert cfg.trainer.epochs == 15 and cfg.early_stopping._target_.endswith("EarlyStopping")
        assert cfg.hydra.sweeper.pruner.n_min_trials == 5 and cfg.hydra.sweeper.async_slots
        assert cfg.hydra.sweeper.timeout is None and cfg.hydra.sweeper.n_trials == 24
    assert flat["phase2"].hydra.sweeper.pin_from == "phase1_flat"
    spaces = {}
    for phase, pin in (("phase1", None), ("phase2", "phase1")):
        cfg = composed(phase)
        sweeper = cfg.hydra.sweeper
        assert sweeper.study_name == phase and sweeper.pin_from == pin
        assert sweeper.timeout == 510 and sweeper.timeout_prune
        assert cfg.trainer.epochs == 20 and cfg.early_stopping._target_ is None
        assert cfg.data.val_split == "holdout"
        pruner = instantiate(sweeper.pruner)
        assert isinstance(pruner, optuna.pruners.HyperbandPruner)
        assert sweeper.pruner.max_resource == 20 and sweeper.pruner.reduction_factor == 3
        rungs = [sweeper.pruner.min_resource * 3**k for k in range(4)]
        assert 20 not in rungs and [r for r in rungs if r < 20] == [2, 6, 18]
        expected = set(flat[phase].hydra.sweeper.params) - {"early_stopping.patience"}
        assert set(sweeper.params) == expected and sweeper.async_slots
        assert len(sweeper.enqueue) == 1 and set(sweeper.enqueue[0]) <= expected
        spaces[phase] = dict(sweeper.params)
        plugin = composed(f"{phase}_plugin_like")
        assert set(plugin.hydra.sweeper.params) == expected
        assert plugin.hydra.sweeper.pruner._target_ == "optuna.pruners.NopPruner"
        assert not plugin.hydra.sweeper.async_slots and plugin.trainer.epochs == 15
        assert plugin.early_stopping._target_ is None and plugin.hydra.sweeper.timeout is None
        assert not plugin.hydra.sweeper.get("enqueue")  # no warm start: the plugin has none
        assert plugin.hydra.sweeper.sampler == sweeper.sampler  # the same TPE
    final = composed("final")
    assert final.hydra.sweeper.pin_from == "phase2" and final.data.val_split == "test"
    joint = composed("joint").hydra.sweeper
    assert dict(joint.params) == {**spaces["phase1"], **spaces["phase2"]}
    assert joint.timeout == 2 * 510 and joint.pin_from is None and not joint.enqueue


@pytest.mark.slow  # three sweeps of ~25 s: make test-all
def test_the_search_runs_as_the_readme_says(tmp_path, sqlite_url, tiny_data_root, compose_cfg):
    """phase1 → phase2 → final, the README's three commands (tiny data, a short budget): each
    phase starts from its warm-start point and ends at its time budget with no trial left
    RUNNING; phase 2 pins phase 1's best; final retrains phase 2's best for its best epoch on
    the test split, one run per seed."""
    budget = (
        "trainer.epochs=4",  # Hyperband's rung at 2, the cap off it
        "hydra.sweeper.timeout=25",
        "hydra.sweeper.n_trials=1000",
        "hydra.sweeper.max_total_trials=1000",
    )
    for phase in ("phase1", "phase2"):
        proc = run_sweep(phase, tmp_path / phase, sqlite_url, tiny_data_root, *budget)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = yaml.safe_load((tmp_path / phase / "optimization_results.yaml").read_text())
        assert results["ended"] == "timeout"
        trials = study(sqlite_url, phase).trials
        assert len(trials) >= 2
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        assert any(t.state == TrialState.COMPLETE for t in trials), "no trial finished in 25 s"
        (warm,) = compose_cfg(f"hparams_search={phase}", return_hydra_config=True).hydra.sweeper[
            "enqueue"
        ]
        assert {k: trials[0].params[k] for k in warm} == dict(warm)
    p1, p2 = study(sqlite_url, "phase1"), study(sqlite_url, "phase2")
    assert p2.user_attrs["pinned"] and set(p2.user_attrs["pinned"]) <= set(p1.best_trial.params)
    cmd = sweep_cmd("final", tmp_path / "final", sqlite_url)  # the epochs come from the pin
    cmd = [c for c in cmd if not c.startswith(("trainer.epochs=", "hydra.sweeper.sampler."))]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env_for(tiny_data_root), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = study(sqlite_url, "final").trials
    assert sorted(t.params["seed"] for t in final) == [1, 2, 3]
    for t in final:
        summary = json.loads(
            (tmp_path / "final" / f"trial_{t.number}" / "summary.json").read_text()
        )
        assert summary["val_split"] == "test"
        assert summary["max_epochs"] == p2.best_trial.user_attrs["best_epoch"]

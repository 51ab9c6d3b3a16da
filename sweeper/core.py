"""``LabSweeperImpl``: hydra-optuna-sweeper's sweeper with the gaps filled.

On top of the plugin's ``OptunaSweeperImpl`` (search space parsing, ``custom_search_space``,
trial configuration are reused as they are), the sweep loop adds:

- a config check: ``check_config`` runs once on the config the trials share (fixed
  overrides and pins) before any trial, so a bad fixed value is one line, not N crashes;
- pinning: ``pin_from`` names a study whose best params become fixed overrides (phase 2);
  what the user passes on the command line and what this phase searches win over pins;
- trial identity: each job gets ``optuna_trial.number/study/storage`` overrides, so its dir
  is ``trial_<number>`` (re-runs and parallel workers never collide) and it can report
  each epoch to Optuna for pruning;
- outcomes: a pruned job is told PRUNED, a diverged or crashed one FAIL with its reason in
  the ``fail_reason`` user attribute (NaN is never told); only crashes count towards
  ``max_failure_rate``, and a sweep whose trials all fail stops with a clear message;
- fault tolerance: heartbeats while a trial runs; at start, trials of a killed worker are
  marked FAIL ("stale") and optionally re-queued with the same params; Ctrl-C keeps the
  trials of the batch whose jobs had finished (read back from their ``summary.json``),
  marks the others FAIL ("interrupted") and says how to resume;
- outputs: ``optimization_results.yaml`` (as the plugin), ``importances.csv``,
  ``study_trials.csv`` and ``pinned.yaml`` in the sweep dir after every invocation.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from pathlib import Path
from typing import Any

import hydra
import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper._impl import (
    OptunaSweeperImpl,
    create_params_from_overrides,
)
from omegaconf import OmegaConf
from optuna.trial import TrialState

from .importance import save_importances
from .pinning import PinError, best_params
from .reporting import route_optuna_logging
from .storage import make_storage, redact

log = logging.getLogger(__name__)

STALE_REASON = "stale: its worker stopped sending heartbeats (killed?)"


class LabSweeperImpl(OptunaSweeperImpl):
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        search_space: Any = None,
        custom_search_space: str | None = None,
        params: Any = None,
        pruner: Any = None,
        pin_from: str | None = None,
        heartbeat_interval: int | None = 10,
        grace_period: int | None = 30,
        requeue_stale: bool = True,
        max_total_trials: int | None = None,
        min_trials_for_failure_rate: int = 3,
        check_config: str | None = None,
    ) -> None:
        super().__init__(
            sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
            search_space, custom_search_space, params,
        )  # fmt: skip
        self.pruner = pruner or optuna.pruners.NopPruner()
        self.pin_from = pin_from
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.requeue_stale = requeue_stale
        self.max_total_trials = max_total_trials
        self.min_trials_for_failure_rate = min_trials_for_failure_rate
        self.check_config = check_config

    # ------------------------------------------------------------------ the sweep
    def sweep(self, arguments: list[str]) -> None:
        route_optuna_logging()
        self._process_searchspace_config()
        searched = self._parse_sweeper_params_config()
        pinned = self._pins(searched, arguments)
        overrides_conf = [f"{k}={v}" for k, v in pinned.items()] + searched + list(arguments)
        space, fixed = create_params_from_overrides(overrides_conf)
        if self.search_space_distributions:
            space = {**self.search_space_distributions, **space}
        for key in fixed:
            space.pop(key, None)
        self._check_fixed_config(fixed, space)

        storage = make_storage(self.storage, self.heartbeat_interval, self.grace_period)
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=self.sampler,
            pruner=self.pruner, directions=self._get_directions(), load_if_exists=True,
        )  # fmt: skip
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if pinned:
            OmegaConf.save(OmegaConf.create(pinned), sweep_dir / "pinned.yaml")
        self._recover_stale(study)
        log.info("study %r in %s: %d trials so far; sampler %s, pruner %s", study.study_name,
                 redact(self.storage), len(study.trials), type(self.sampler).__name__,
                 type(self.pruner).__name__)  # fmt: skip
        log.info("search space: %s", ", ".join(f"{k}={v}" for k, v in space.items()) or "-")

        tally = {"complete": 0, "pruned": 0, "failed": 0, "crashed": 0}
        first_error: str | None = None
        to_go = self.n_trials
        try:
            while to_go > 0:
                batch = min(self.n_jobs, to_go, self._room_left(study))
                if batch <= 0:
                    log.info("the study reached max_total_trials=%s", self.max_total_trials)
                    break
                trials = [study.ask() for _ in range(batch)]
                if storage is not None and storage.is_heartbeat_enabled():
                    for t in trials:  # a worker killed before its first beat still goes stale
                        storage.record_heartbeat(t._trial_id)
                overrides = [
                    tuple(ov) + self._identity(t)
                    for t, ov in zip(trials, self._configure_trials(trials, space, fixed))
                ]  # fmt: skip
                launched = _file_clock(sweep_dir)
                with self._heartbeat(storage, trials), _sigint_flag() as sigint:
                    try:
                        returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
                    except KeyboardInterrupt:
                        sigint.set()
                    if sigint.is_set():  # also when a library turned the Ctrl-C into an error
                        self._interrupted(study, trials, sweep_dir, launched)
                        raise KeyboardInterrupt
                self.job_idx += len(returns)
                for trial, ret in zip(trials, returns):
                    outcome, reason = self._tell(study, trial, ret)
                    tally[outcome] += 1
                    if outcome == "crashed":
                        tally["failed"] += 1
                        first_error = first_error or reason
                to_go -= batch
                self._check_failures(tally, first_error)
        finally:
            self._write_outputs(study, sweep_dir)
        log.info("this invocation: %(complete)d complete, %(pruned)d pruned, %(failed)d failed",
                 tally)  # fmt: skip
        if tally["complete"] == 0 and tally["pruned"] == 0 and tally["failed"] > 0:
            raise SystemExit(
                f"error: all {tally['failed']} trials of this sweep failed "
                f"(first: {first_error or 'diverged'}); see {sweep_dir}/trial_*/summary.json"
            )

    # ------------------------------------------------------------------ pieces
    def _pins(self, searched: list[str], arguments: list[str]) -> dict[str, Any]:
        """Phase 1's best params, minus what this phase searches or the user set."""
        if not self.pin_from:
            return {}
        try:
            params, value, number = best_params(self.storage, self.pin_from)
        except PinError as e:
            raise SystemExit(f"error: {e}") from None  # Hydra prints it once, on stderr
        taken = {_key(o) for o in searched + list(arguments)}
        pinned = {k: v for k, v in params.items() if k not in taken}
        log.info("pinned from study %r (best trial %d, value %.4f): %s", self.pin_from, number,
                 value, ", ".join(f"{k}={v}" for k, v in pinned.items()) or "-")  # fmt: skip
        return pinned

    def _check_fixed_config(self, fixed: dict[str, Any], space: dict[str, Any]) -> None:
        """Run ``check_config`` once on the config every trial shares (the fixed overrides and
        pins; searched keys at their defaults), so a bad fixed value stops the sweep here, in
        one line, instead of crashing every trial. Errors about searched keys are left to the
        trials."""
        if not self.check_config:
            return
        check = hydra.utils.get_method(self.check_config)
        overrides = [f"{k}={v}" for k, v in fixed.items()]
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        searched = {k.lstrip("+~") for k in space}
        try:
            check(cfg)
        except Exception as e:
            if getattr(e, "key", None) in searched:
                return
            raise SystemExit(f"error: {e}") from None

    def _identity(self, trial: optuna.Trial) -> tuple[str, ...]:
        """Overrides that tell the job which trial it is (dir name, pruning reports)."""
        ids = [f"optuna_trial.number={trial.number}", f"optuna_trial.study={self.study_name}"]
        if self.storage:
            ids.append(f"optuna_trial.storage='{self.storage}'")
        return tuple(ids)

    def _room_left(self, study: optuna.Study) -> int:
        if not self.max_total_trials:
            return self.n_jobs
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return self.max_total_trials - len(study.get_trials(deepcopy=False, states=counted))

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> tuple[str, str]:
        """Record one job's outcome; return (complete|pruned|failed|crashed, reason)."""
        summary = _read_summary(ret)
        overrides = " ".join(ret.overrides or [])
        if ret.status == JobStatus.FAILED:
            exc = ret._return_value
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, optuna.TrialPruned):
                study.tell(trial, state=TrialState.PRUNED)
                log.info("trial %d pruned: %s", trial.number, exc)
                return "pruned", reason
            trial.set_user_attr("fail_reason", reason[:500])
            study.tell(trial, state=TrialState.FAIL)
            log.error("trial %d failed: %s\n  overrides: %s", trial.number, reason, overrides)
            return "crashed", reason
        value = _as_float(ret._return_value)
        if summary.get("status") == "diverged" or value is None or not math.isfinite(value):
            reason = summary.get("reason") or f"non-finite objective {ret._return_value!r}"
            trial.set_user_attr("fail_reason", f"diverged: {reason}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d diverged (%s); the sweep goes on", trial.number, reason)
            return "failed", reason
        study.tell(trial, values=[value])
        return "complete", ""

    def _check_failures(self, tally: dict[str, int], first_error: str | None) -> None:
        done = sum(tally[k] for k in ("complete", "pruned", "failed"))
        if done < self.min_trials_for_failure_rate or tally["crashed"] == 0:
            return
        if tally["crashed"] / done > self.max_failure_rate:
            raise SystemExit(
                f"error: {tally['crashed']} of {done} trials crashed (max_failure_rate="
                f"{self.max_failure_rate}); first error: {first_error}"
            )

    def _recover_stale(self, study: optuna.Study) -> None:
        """Fail the RUNNING trials of dead workers; re-queue their params if configured."""
        if not study._storage.is_heartbeat_enabled():
            return
        storage = study._storage
        backend = getattr(storage, "_backend", storage)
        for trial_id in backend._get_stale_trial_ids(study._study_id):
            try:
                storage.set_trial_user_attr(trial_id, "fail_reason", STALE_REASON)
                if not storage.set_trial_state(trial_id, TrialState.FAIL):
                    continue
            except RuntimeError:  # already finished: another worker got there first
                continue
            frozen = storage.get_trial(trial_id)
            log.warning("trial %d was left running by a killed worker: marked FAIL (stale)%s",
                        frozen.number, ", re-queued" if self.requeue_stale else "")  # fmt: skip
            if self.requeue_stale and frozen.params:
                study.enqueue_trial(frozen.params)

    @contextlib.contextmanager
    def _heartbeat(self, storage, trials: list[optuna.Trial]):
        """Record heartbeats for ``trials`` from a thread while the jobs run."""
        if storage is None or not storage.is_heartbeat_enabled():
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while True:
                for t in trials:
                    with contextlib.suppress(Exception):
                        storage.record_heartbeat(t._trial_id)
                if stop.wait(self.heartbeat_interval):
                    return

        thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _interrupted(
        self, study: optuna.Study, trials: list[optuna.Trial], sweep_dir: Path, since: float
    ) -> None:
        """Tell the batch's finished jobs as usual; mark the rest FAIL ("interrupted").

        With ``n_jobs`` > 1 some jobs of the batch may have finished before the Ctrl-C; the
        launcher returns nothing then, so their outcome is read from their own
        ``summary.json`` (found through ``trial.json``; written after the batch started).
        """
        try:
            summaries = _summaries_by_trial(sweep_dir, self.study_name, since)
        except Exception as e:  # e.g. a folder removed during the walk: never hide the Ctrl-C
            log.warning("could not read the batch's summaries: %s", e)
            summaries = {}
        kept, lost = [], []
        for t in trials:
            summary = summaries.get(t.number, {})
            try:
                if summary.get("status") in _FINISHED:
                    self._tell_summary(study, t, summary)
                    kept.append(t.number)
                    continue
            except Exception as e:  # an unreadable summary must not hide the Ctrl-C
                log.warning("trial %d: could not record its finished job: %s", t.number, e)
            lost.append(t.number)
            with contextlib.suppress(Exception):
                t.set_user_attr("fail_reason", "interrupted (Ctrl-C)")
            with contextlib.suppress(Exception):
                study.tell(t, state=TrialState.FAIL)
        if kept:
            log.info("interrupted: trial(s) %s had finished and are recorded as usual", kept)
        log.warning(
            "interrupted: trial(s) %s marked FAIL; finished trials are saved in %s (study %r). "
            "Resume with the same command: new trials are added to the study.",
            lost, redact(self.storage), self.study_name,
        )  # fmt: skip

    def _tell_summary(self, study: optuna.Study, trial: optuna.Trial, summary: dict) -> None:
        """Tell a finished job's outcome from its summary.json (as ``_tell`` would)."""
        status = summary["status"]
        if status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
            return
        if status == "diverged":
            trial.set_user_attr("fail_reason", f"diverged: {summary.get('reason')}"[:500])
            study.tell(trial, state=TrialState.FAIL)
            return
        value = _as_float(summary.get(summary["config"]["optimized_metric"]))
        if value is None or not math.isfinite(value):
            raise ValueError(f"no finite objective in its summary.json: {value!r}")
        study.tell(trial, values=[value])

    def _write_outputs(self, study: optuna.Study, sweep_dir: Path) -> None:
        """optimization_results.yaml, importances.csv and study_trials.csv for the study."""
        try:
            trials = study.trials_dataframe(multi_index=False)
            trials.to_csv(sweep_dir / "study_trials.csv", index=False)
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if not complete:
                return
            best = study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value,
                       "best_trial": best.number, "study_name": study.study_name,
                       "storage": redact(self.storage)}  # fmt: skip
            OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
            log.info("best trial %d: value %.4f, params %s", best.number, best.value, best.params)
            save_importances(study, sweep_dir / "importances.csv")
        except Exception as e:  # reporting must never lose the sweep's exit status
            log.warning("could not write the study outputs: %s", e)


@contextlib.contextmanager
def _sigint_flag():
    """Record a Ctrl-C (then raise KeyboardInterrupt as usual) while the jobs run."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_sigint(signum, frame):
        flag.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        if previous is not None:  # None: the old handler was not installed from Python
            signal.signal(signal.SIGINT, previous)


def _key(override: str) -> str:
    return OverridesParser.create().parse_override(override).get_key_element().lstrip("+~")


def _as_float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_FINISHED = ("completed", "early_stopped", "pruned", "diverged")  # summary.json statuses


def _file_clock(sweep_dir: Path) -> float:
    """Now, by the clock that stamps files in ``sweep_dir`` (a shared filesystem's may differ
    from this host's): the mtime of a marker file touched for the purpose."""
    marker = sweep_dir / ".batch_started"
    try:
        marker.touch()
        return marker.stat().st_mtime
    except OSError:
        return time.time()


def _summaries_by_trial(sweep_dir: Path, study_name: str | None, since: float) -> dict[int, dict]:
    """{trial number: summary.json} of this study's jobs under ``sweep_dir`` written after
    ``since`` (older files belong to an earlier study of the same name)."""
    found: dict[int, dict] = {}
    for record_path in sweep_dir.rglob("trial.json"):
        summary_path = record_path.with_name("summary.json")
        try:
            if summary_path.stat().st_mtime < since - 1.0:  # 1 s: coarse timestamps
                continue
            record = json.loads(record_path.read_text())
            if str(record.get("study")) == str(study_name):  # "None" when unnamed
                found[int(record["number"])] = json.loads(summary_path.read_text())
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _read_summary(ret: JobReturn) -> dict[str, Any]:
    """The job's summary.json (its output dir; ``working_dir`` is the cwd without chdir)."""
    try:
        path = Path(ret.hydra_cfg.hydra.runtime.output_dir) / "summary.json"
    except AttributeError:
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}

"""``LabOptunaSweeper``: a Hydra sweeper on current Optuna, for any Hydra app.

The config grammar is hydra-optuna-sweeper's (``params``, ``custom_search_space``, the
deprecated ``search_space``, ``sampler``, ``direction``, ``storage``, ``study_name``,
``n_trials``, ``n_jobs``, ``max_failure_rate``); on top of it:

- trial identity: a job's ``hydra.job.num`` is its Optuna trial number, so job dirs never
  collide across resumed sweeps or workers, and ``sweeper.current_trial()`` finds the trial
  from inside the job (``lab_optuna/trial.py``) for ``report``/``should_prune``;
- slots: with a launcher that runs jobs concurrently, ``n_jobs`` trials run at once and a
  new one starts as soon as one ends (``async_slots: false``: wait for the whole batch);
- outcomes (``lab_optuna/states.py``): pruned → PRUNED; a non-finite objective → FAIL (not a
  crash); an exception → FAIL with its reason in the ``fail_reason`` user attribute, counted
  towards ``max_failure_rate``;
- pinning (``pin_from``), a config check before any trial (``check_config``),
  ``max_total_trials`` across workers;
- fault tolerance: the training process beats for its trial; before every new trial,
  trials of dead jobs are failed and re-queued (``max_retry``); Ctrl-C and SIGTERM keep
  finished trials, mark running ones FAIL and print how to resume;
- outputs: ``optimization_results.yaml`` (as the plugin: best params/value, or the Pareto
  front as ``solutions``), ``study_trials.csv``, ``importances.csv``, ``pinned.yaml``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf, read_write
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from . import space as sp
from . import states
from .overrides import format_value, key_of
from .pinning import PINNED_ATTR, PinError, best_of
from .reporting import Console, quiet_launchers, route_optuna_logging
from .retry import RetryStale, requeue
from .samplers import build_sampler
from .screening import select
from .settings import Settings, SettingsError
from .storage import StorageError, make_storage, redact
from .trial import LIVE_STUDIES, TrialJob, beats, read_record, repeating

log = logging.getLogger(__name__)


@dataclass
class Tally:
    """This invocation's outcomes."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0  # non-finite objective (e.g. diverged), stale, interrupted
    crashed: int = 0  # exceptions: these count towards max_failure_rate
    first_error: str | None = None  # of a crash
    first_failure: str | None = None  # of any trial that did not complete

    @property
    def done(self) -> int:
        return self.complete + self.pruned + self.failed + self.crashed


class Stop(Exception):
    """Ctrl-C or SIGTERM reached the sweeper."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class LabOptunaSweeper(Sweeper):
    """Hydra's ``Sweeper`` interface; keys: ``hydra_plugins/lab_optuna_sweeper/conf``."""

    def __init__(self, **config: Any) -> None:
        try:
            self.s = Settings.from_config(config)
        except SettingsError as e:
            raise SystemExit(f"error: {e}") from None
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=TrialJob(task_function)
        )

    # ------------------------------------------------------------------ the sweep
    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None
        route_optuna_logging()
        try:
            space, fixed, pinned = self._search_space(list(arguments))
            self._check_fixed_config(fixed, space)
            study, storage = self._study(space)
        except (SettingsError, sp.SearchSpaceError, StorageError, PinError) as e:
            raise SystemExit(f"error: {e}") from None
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if pinned:
            OmegaConf.save(OmegaConf.create(pinned), sweep_dir / "pinned.yaml")
            study.set_user_attr(PINNED_ATTR, pinned)  # a later phase pins them too
        n_trials = self._trials_to_run(study, space)
        log.info(
            "study %r in %s: %d trials so far; sampler %s, pruner %s",
            study.study_name,
            redact(self.s.storage) if self.s.storage else "memory",
            len(study.trials),
            study.sampler,
            type(study.pruner).__name__,
        )
        log.info(
            "search space: %s", ", ".join(f"{k}={sp.describe(v)}" for k, v in space.items()) or "-"
        )
        console = Console(n_trials, self.s.directions, study)
        quiet_launchers()
        tally = Tally()
        try:
            with _stop_signals() as stopped:
                self._run(study, storage, space, fixed, n_trials, tally, console, stopped)
        except Stop as e:
            log.warning(
                "%s: running trials were marked FAIL; finished trials are saved in %s "
                "(study %r). Resume with the same command: new trials are added.",
                e,
                redact(self.s.storage) if self.s.storage else "memory (lost on exit)",
                study.study_name,
            )
            raise SystemExit(128 + e.signum) from None  # 130 Ctrl-C, 143 SIGTERM; no traceback
        finally:
            console.close()
            self._write_outputs(study, sweep_dir)
            LIVE_STUDIES.pop(study.study_name, None)
        log.info(
            "this invocation: %d complete, %d pruned, %d failed",
            tally.complete,
            tally.pruned,
            tally.failed + tally.crashed,
        )
        if tally.done and tally.complete == 0 and tally.pruned == 0:
            raise SystemExit(
                f"error: all {tally.done} trials of this sweep failed (first: "
                f"{tally.first_failure}); see {sweep_dir}"
            )

    # ------------------------------------------------------------------ set-up
    def _search_space(self, arguments: list[str]):
        """(distributions, fixed overrides, pins) from search_space, params, pins and CLI."""
        searched = [f"{k}={v}" for k, v in (self.s.params or {}).items()]
        screened = select(self.s.storage, self.s.params_from) if self.s.params_from else {}
        pinned = self._pins(searched, arguments, set(screened))
        texts = [f"{k}={format_value(v)}" for k, v in pinned.items()] + searched + arguments
        space, fixed = sp.from_overrides(texts)
        space = {**screened, **space}  # params and the command line win
        if self.s.search_space:
            legacy = {str(k): sp.from_config(str(k), v) for k, v in self.s.search_space.items()}
            space = {**legacy, **space}
        for key in fixed:
            space.pop(key, None)
        return space, fixed, pinned

    def _pins(
        self, searched: list[str], arguments: list[str], screened: set[str]
    ) -> dict[str, Any]:
        """The best params of study ``pin_from`` (with the pins it ran with, and the best
        trial's user attributes named by ``pin_user_attrs``), minus ``pin_exclude`` and what
        this phase searches or the command line sets."""
        if not self.s.pin_from:
            return {}
        best = best_of(self.s.storage, self.s.pin_from)
        params = dict(best.params)
        for key, attr in (self.s.pin_user_attrs or {}).items():
            if attr not in best.user_attrs:
                where = f"trial {best.number} of study {best.study!r}"
                raise PinError(
                    f"hydra.sweeper.pin_user_attrs.{key}={attr}: {where} has no "
                    f"user attribute {attr!r}"
                )
            params[str(key)] = best.user_attrs[attr]
        taken = {key_of(o) for o in searched + arguments} | screened
        taken |= set(self.s.pin_exclude or [])
        pinned = {k: v for k, v in params.items() if k.lstrip("+") not in taken}
        shown = ", ".join(f"{k}={v}" for k, v in pinned.items()) or "-"
        log.info(
            "pinned from study %r (best trial %d, value %s): %s",
            best.study,
            best.number,
            _show(best.value),
            shown,
        )
        return pinned

    def _check_fixed_config(self, fixed: dict[str, str], space: dict[str, Any]) -> None:
        """Run ``check_config`` once on the config every trial shares (fixed overrides and
        pins; searched keys at their defaults): a bad fixed value stops the sweep here, in
        one line, instead of failing every trial. Errors about searched keys go to trials."""
        if not self.s.check_config:
            return
        assert self.hydra_context is not None and self.config is not None
        check = get_method(self.s.check_config)
        overrides = [f"{k}={v}" for k, v in fixed.items()]
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        searched = {k.lstrip("+~") for k in space}
        try:
            check(cfg)
        except Exception as e:
            if getattr(e, "key", None) in searched:
                return
            raise SystemExit(f"error: {e}") from None

    def _study(self, space: dict[str, BaseDistribution]) -> tuple[optuna.Study, Any]:
        s = self.s
        if s.storage:
            storage = make_storage(
                s.storage, s.heartbeat_interval, s.grace_period, RetryStale(s.max_retry)
            )
        else:
            storage = optuna.storages.InMemoryStorage()
        sampler = self._sampler(space)
        pruner = instantiate(s.pruner) if s.pruner else optuna.pruners.NopPruner()
        try:
            study = optuna.create_study(
                study_name=s.study_name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                directions=s.directions,
                load_if_exists=True,
            )
        except ValueError as e:  # e.g. a stored study with other directions
            raise SettingsError(f"study {s.study_name!r}: {e}") from None
        if not s.storage:
            LIVE_STUDIES[study.study_name] = (study, storage)
        return study, storage

    def _sampler(self, space: dict[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
        node = (
            OmegaConf.to_container(self.s.sampler, resolve=True)
            if self.s.sampler
            else {"_target_": "optuna.samplers.TPESampler"}
        )
        target = str(node.get("_target_", ""))
        seed = node.pop("seed", None)
        if target.endswith("GridSampler"):
            node.pop("search_space", None)
            node["search_space"] = sp.grid(space)
        try:
            make = instantiate(node, _partial_=True, _convert_="all")
            return build_sampler(make, seed, self.s.reseed_per_trial)
        except Exception as e:  # e.g. a key this sampler does not take
            raise SettingsError(
                f"hydra.sweeper.sampler ({target}): {str(e).splitlines()[0]}"
            ) from None

    def _trials_to_run(self, study: optuna.Study, space: dict[str, BaseDistribution]) -> int:
        n = self.s.n_trials
        if str(self.s.sampler and self.s.sampler.get("_target_")).endswith("GridSampler"):
            left = sp.grid_size(sp.grid(space)) - len(
                study.get_trials(deepcopy=False, states=_COUNTED)
            )
            if left < n:
                log.info(
                    "grid sampler: %d of the grid's points left to run (n_trials=%d)",
                    max(left, 0),
                    n,
                )
            n = max(min(n, left), 0)
        return n

    # ------------------------------------------------------------------ running trials
    def _run(
        self,
        study,
        storage,
        space,
        fixed,
        n_trials: int,
        tally: Tally,
        console: Console,
        stopped: threading.Event,
    ) -> None:
        """Ask, launch and tell until ``n_trials`` ran, keeping ``n_jobs`` slots busy."""
        concurrent = not _in_process(self.launcher)  # threads watch remote jobs, even 1
        slots = self.s.n_jobs if concurrent else 1
        running: dict[Future, tuple[optuna.Trial, float]] = {}
        started = 0
        next_check = time.monotonic()
        try:
            with _sweeper_heartbeat(storage, running, self.s.heartbeat_interval):
                while started < n_trials or running:
                    free = slots - len(running)
                    may_start = not running or self.s.async_slots
                    while free > 0 and started < n_trials and may_start and not stopped.is_set():
                        if self._room_left(study) <= 0:
                            log.info(
                                "the study reached max_total_trials=%s", self.s.max_total_trials
                            )
                            n_trials = started
                            break
                        _fail_stale(study, storage)
                        trial = study.ask()
                        _first_beat(storage, trial)  # a job killed before it beats goes stale
                        try:
                            overrides = self._overrides(study, trial, space, fixed)
                        except Exception as e:  # e.g. custom_search_space: never left RUNNING
                            _fail(study, trial, f"{type(e).__name__}: {e}")
                            raise SystemExit(
                                f"error: trial {trial.number} could not be "
                                f"configured: {type(e).__name__}: {e}"
                            ) from None
                        console.started(trial)
                        started += 1
                        free -= 1
                        if not concurrent:  # in this process, now (Ctrl-C reaches the job)
                            self._run_here(study, trial, overrides, running, tally, console)
                            self._check_failures(tally)
                            continue
                        running[_in_thread(self._launch, trial, overrides)] = (
                            trial,
                            time.monotonic(),
                        )
                    if stopped.is_set():
                        raise Stop(stopped.signum)  # type: ignore[attr-defined]
                    if not running:
                        continue
                    done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for fut in done:
                        trial, t0 = running.pop(fut)
                        self._finish(study, trial, fut, time.monotonic() - t0, tally, console)
                    if self.s.heartbeat_interval and time.monotonic() >= next_check:
                        next_check = time.monotonic() + self.s.heartbeat_interval
                        self._drop_dead_jobs(study, storage, running, tally, console)
                    self._check_failures(tally)
        except (Stop, KeyboardInterrupt) as e:
            name = signal.Signals(getattr(stopped, "signum", signal.SIGINT)).name
            self._interrupted(study, running, f"interrupted ({name} to the sweeper)")
            if isinstance(e, KeyboardInterrupt):
                raise Stop(getattr(stopped, "signum", signal.SIGINT)) from None
            raise

    def _drop_dead_jobs(
        self, study, storage, running: dict, tally: Tally, console: Console
    ) -> None:
        """Stop waiting for jobs whose trial went stale (the job died: killed, cancelled,
        node lost) even if the launcher never returns; their params are re-queued."""
        _fail_stale(study, storage)
        if not running:
            return
        frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
        for fut, (trial, t0) in list(running.items()):
            if frozen[trial.number].state == TrialState.FAIL:
                del running[fut]  # its thread may stay blocked in the launcher: abandoned
                tally.failed += 1
                console.finished(
                    trial.number,
                    "failed",
                    states.STALE,
                    time.monotonic() - t0,
                    frozen[trial.number],
                )

    def _run_here(
        self, study, trial, overrides, running: dict, tally: Tally, console: Console
    ) -> None:
        """One job in this process (Hydra's basic launcher); listed in ``running`` meanwhile,
        so an interrupt marks its trial."""
        fut: Future = Future()
        t0 = time.monotonic()
        running[fut] = (trial, t0)
        try:
            fut.set_result(self._launch(trial, overrides))
        except Exception as e:  # noqa: BLE001 - the launcher itself failed
            fut.set_exception(e)
        del running[fut]
        self._finish(study, trial, fut, time.monotonic() - t0, tally, console)

    def _launch(self, trial: optuna.Trial, overrides: tuple[str, ...]) -> JobReturn:
        return self.launcher.launch([overrides], initial_job_idx=trial.number)[0]

    def _overrides(self, study: optuna.Study, trial: optuna.Trial, space, fixed) -> tuple:
        """Sample the trial (space, then custom_search_space) → the job's overrides."""
        for name, dist in space.items():
            sp.suggest(trial, name, dist)
        for name, value in fixed.items():
            trial.set_user_attr(name, value)
        if self.s.custom_search_space:
            get_method(self.s.custom_search_space)(self.config, trial)
        overlap = set(trial.params) & set(fixed)
        if overlap:
            raise SettingsError(f"searched and fixed at once: {sorted(overlap)}")
        params = {k: _override_text(v) for k, v in trial.params.items()}
        params.update(fixed)
        identity = []
        if self.s.study_name is None:  # the job must find the study Optuna named
            identity.append(f"hydra.sweeper.study_name={study.study_name}")
        return tuple(f"{k}={v}" for k, v in params.items()) + tuple(identity)

    def _finish(
        self, study, trial, fut: Future, seconds: float, tally: Tally, console: Console
    ) -> None:
        """Tell Optuna the outcome of one job."""
        try:
            ret: JobReturn = fut.result()
        except Exception as e:  # the launcher itself failed (e.g. a SLURM submission)
            ret = JobReturn(status=JobStatus.FAILED, _return_value=e)
        state, reason, frozen = self._tell(study, trial, ret)
        if state == "died, requeue":  # not the app's fault: its params are run again
            if frozen is not None:
                requeue(study, frozen, reason, self.s.max_retry)
        if state != "complete":
            tally.first_failure = tally.first_failure or reason
        if state == "complete":
            tally.complete += 1
        elif state == "pruned":
            tally.pruned += 1
        elif state == "crashed":
            tally.crashed += 1
            tally.first_error = tally.first_error or reason
            log.error(
                "trial %d failed: %s\n  overrides: %s",
                trial.number,
                reason,
                " ".join(ret.overrides or []),
            )
        else:
            tally.failed += 1
        console.finished(trial.number, state, reason, seconds, frozen)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret: JobReturn):
        """Record one job's outcome: (complete|pruned|failed|crashed, reason, FrozenTrial)."""
        if ret.status == JobStatus.FAILED:
            # the job's exception (JobReturn.return_value would re-raise it, printing a line)
            e = ret._return_value
            if isinstance(e, optuna.TrialPruned):
                return "pruned", str(e), _tell(study, trial, state=TrialState.PRUNED)
            reason = f"{type(e).__name__}: {e}"
            death = states.job_death(reason)
            if death is not None:  # the cluster ended the job (scancel, time limit, ...)
                outcome = "died, requeue" if death[1] else "died"
                return outcome, death[0], _fail(study, trial, death[0])
            return "crashed", reason, _fail(study, trial, reason)
        try:
            values = states.objective_values(ret.return_value, len(self.s.directions))
        except states.BadReturn as e:
            return "crashed", str(e), _fail(study, trial, str(e))
        if not states.finite(values):
            reason = f"non-finite objective {ret.return_value!r}"
            return "failed", reason, _fail(study, trial, reason, keep_existing=True)
        return "complete", "", _tell(study, trial, values=values)

    def _check_failures(self, tally: Tally) -> None:
        if tally.crashed == 0 or tally.done < self.s.min_trials_for_failure_rate:
            return
        if tally.crashed / tally.done > self.s.max_failure_rate:
            raise SystemExit(
                f"error: {tally.crashed} of {tally.done} trials crashed (max_failure_rate="
                f"{self.s.max_failure_rate}); first error: {tally.first_error}"
            )

    def _room_left(self, study: optuna.Study) -> int:
        if not self.s.max_total_trials:
            return 1
        return self.s.max_total_trials - len(study.get_trials(deepcopy=False, states=_COUNTED))

    def _interrupted(self, study: optuna.Study, running: dict, reason: str) -> None:
        """Tell the running trials whose jobs had finished (their ``trial.json``); mark the
        rest FAIL ("interrupted")."""
        assert self.config is not None
        for trial, _ in list(running.values()):
            record = _record_of(self.config, trial.number)
            try:
                if record.get("state") == states.COMPLETE_STATE and record.get("values"):
                    _tell(study, trial, values=record["values"])
                    log.info("trial %d had finished: recorded as usual", trial.number)
                    continue
                if record.get("state") == states.PRUNED_STATE:
                    _tell(study, trial, state=TrialState.PRUNED)
                    continue
            except Exception as e:  # noqa: BLE001 - never hide the interrupt
                log.warning("trial %d: could not record its finished job: %s", trial.number, e)
            _fail(study, trial, reason)
            log.warning("trial %d marked FAIL (%s)", trial.number, reason)

    def _write_outputs(self, study: optuna.Study, sweep_dir: Path) -> None:
        """optimization_results.yaml, study_trials.csv and importances.csv."""
        from .importance import save_importances

        try:
            study.trials_dataframe(multi_index=False).to_csv(
                sweep_dir / "study_trials.csv", index=False
            )
            if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                return
            results: dict[str, Any] = {"name": "optuna"}
            if len(self.s.directions) == 1:
                best = study.best_trial
                results.update(
                    best_params=best.params, best_value=best.value, best_trial=best.number
                )
                log.info(
                    "best trial %d: value %s, params %s",
                    best.number,
                    _show(best.value),
                    best.params,
                )
            else:
                results["solutions"] = [
                    {"params": t.params, "values": t.values, "trial": t.number}
                    for t in study.best_trials
                ]
                log.info("Pareto front: %d trial(s)", len(results["solutions"]))
            results.update(
                study_name=study.study_name,
                storage=redact(self.s.storage) if self.s.storage else None,
            )
            OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
            save_importances(study, sweep_dir / "importances.csv")
        except Exception as e:  # reporting must never lose the sweep's exit status
            log.warning("could not write the study outputs: %s", e)


_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _tell(study: optuna.Study, trial: optuna.Trial, **kw: Any) -> FrozenTrial | None:
    try:
        return study.tell(trial, **kw)
    except RuntimeError as e:  # the grid sampler's study.stop() outside optimize()
        if "Study.stop" not in str(e):
            raise
    except optuna.exceptions.UpdateFinishedTrialError:  # failed meanwhile (stale)
        log.warning("trial %d had already been marked finished", trial.number)
    return _frozen(study, trial)


def _frozen(study: optuna.Study, trial: optuna.Trial) -> FrozenTrial | None:
    found = study.get_trials(deepcopy=False)
    return found[trial.number] if trial.number < len(found) else None


def _fail(
    study: optuna.Study, trial: optuna.Trial, reason: str, keep_existing: bool = False
) -> FrozenTrial | None:
    with contextlib.suppress(Exception):
        frozen = _frozen(study, trial) if keep_existing else None
        if frozen is None or not frozen.user_attrs.get(states.FAIL_REASON_ATTR):
            trial.set_user_attr(states.FAIL_REASON_ATTR, reason[:500])
    return _tell(study, trial, state=TrialState.FAIL)


def _record_of(config: DictConfig, number: int) -> dict[str, Any]:
    """The ``trial.json`` of job ``number`` (its dir resolved as Hydra would)."""
    try:
        cfg = copy.deepcopy(config)
        with read_write(cfg.hydra.job):
            cfg.hydra.job.num = number  # as the launchers set it for the job
        return read_record(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir))
    except Exception:  # noqa: BLE001 - an unreadable record: the trial is marked interrupted
        return {}


def _fail_stale(study: optuna.Study, storage: Any) -> None:
    """Fail the trials of dead jobs (their re-queue: ``RetryStale``) before a new trial."""
    import warnings

    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _in_thread(fn: Any, *args: Any) -> Future:
    """Run ``fn(*args)`` in a daemon thread (a launcher that never returns for a dead job
    must not keep the sweep alive once the sweeper has moved on)."""
    fut: Future = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the sweep loop
            fut.set_exception(e)

    threading.Thread(target=run, name="trial-slot", daemon=True).start()
    return fut


def _in_process(launcher: Any) -> bool:
    """True for Hydra's basic launcher, which runs jobs one by one in this process."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher

    return isinstance(launcher, BasicLauncher)


def _override_text(value: Any) -> str:
    return value if isinstance(value, str) else format_value(value)


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _sweeper_heartbeat(
    storage: Any, running: dict, interval: int | None
) -> contextlib.AbstractContextManager:
    """Beat for launched trials whose job has not started yet (queued on a cluster): once
    the job runs, it beats itself (and stops doing so if it dies)."""
    if not interval or not beats(storage):
        return contextlib.nullcontext()
    ids: dict[int, int] = {}  # trial number → storage id, looked up once

    def beat() -> None:
        for trial, _ in list(running.values()):
            if trial.number not in ids:
                ids[trial.number] = _trial_id(storage, trial)
            if "host" not in storage.get_trial(ids[trial.number]).user_attrs:
                storage.record_heartbeat(ids[trial.number])

    return repeating(interval, beat, "queued-heartbeat")


def _first_beat(storage: Any, trial: optuna.Trial) -> None:
    if beats(storage):
        with contextlib.suppress(Exception):
            storage.record_heartbeat(_trial_id(storage, trial))


def _trial_id(storage: Any, trial: optuna.Trial) -> int:
    study_id = storage.get_study_id_from_name(trial.study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


@contextlib.contextmanager
def _stop_signals():
    """SIGINT and SIGTERM set a flag (the loop stops at its next step) and, for the first
    Ctrl-C, also raise KeyboardInterrupt so an in-process job stops now."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_signal(signum, frame):
        flag.signum = signum  # type: ignore[attr-defined]
        flag.set()
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)

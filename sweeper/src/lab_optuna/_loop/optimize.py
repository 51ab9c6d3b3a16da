"""The slot loop (Optuna's ``_optimize``): ask, launch and tell until the sweep's trials ran.

With a launcher that runs jobs concurrently, each launch waits in a daemon thread and
``n_jobs`` trials run at once, a new one starting as soon as one ends (``async_slots:
false``: when the whole batch has ended); Hydra's basic launcher runs one job at a time in
this process. Before every new trial, trials of dead jobs are failed and continued by a new
attempt (``continuation.py``); jobs whose trial went stale are no longer waited for.
SIGINT/SIGTERM stop the loop: finished jobs are still recorded from their ``trial.json``,
running trials are marked FAIL and queued to continue when the sweep is run again.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig
from optuna.trial import TrialState

from lab_optuna import names
from lab_optuna._job import trial_json
from lab_optuna._keys.settings import Settings
from lab_optuna._loop import slurm
from lab_optuna._loop.budget import Budget, Ended
from lab_optuna._loop.console import Console
from lab_optuna._loop.continuation import requeue
from lab_optuna._loop.slot_overrides import SlotOverrides
from lab_optuna._loop.verdicts import STALE, Tally, Verdict, fail, of_job, tell, tell_verdict
from lab_optuna._search.plan import Plan
from lab_optuna._search.study import room_left
from lab_optuna._storage.heartbeat import fail_stale, first_beat, queued_heartbeat

log = logging.getLogger(__name__)


class Stop(Exception):
    """Ctrl-C or SIGTERM reached the sweeper."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopFlag(threading.Event):
    """Set by SIGINT/SIGTERM; ``signum`` says which (SIGINT until one arrives).
    ``job_in_process``: a job runs in this process now, so the signal interrupts it at once."""

    signum: int = signal.SIGINT
    job_in_process: bool = False


@contextlib.contextmanager
def stop_signals() -> Iterator[StopFlag]:
    """SIGINT and SIGTERM set the flag (the loop stops at its next step) and, while a job runs
    in this process, also raise KeyboardInterrupt so it stops now. Never between an ask and
    the trial's entry in ``running``: a trial asked then would be left RUNNING."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_signal(signum: int, frame: Any) -> None:
        flag.signum = signum
        flag.set()
        if flag.job_in_process:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)


@dataclass
class Loop:
    """One invocation's trials: launched jobs in ``running`` (future → (trial, start))."""

    settings: Settings
    study: optuna.Study
    storage: Any
    plan: Plan
    launcher: Any
    config: DictConfig
    console: Console
    tally: Tally = field(default_factory=Tally)
    running: dict[Future, tuple[optuna.Trial, float]] = field(default_factory=dict)
    stopped: StopFlag = field(default_factory=StopFlag)
    budget: Budget = field(default_factory=Budget)  # timeout and terminator (budget.py)
    ended: Ended = field(default_factory=Ended)  # why the loop stopped starting trials
    per_slot: SlotOverrides = field(default_factory=SlotOverrides)  # slot_overrides
    continuations: int = 0  # this invocation's trials continued by a new attempt: run them too
    closed: bool = False  # the budget or max_total_trials ended the loop: no new trial starts

    def run(self, n_trials: int, stopped: StopFlag) -> None:
        """Ask, launch and tell until ``n_trials`` ran, keeping ``n_jobs`` slots busy; a trial
        of this invocation whose job died is continued here too (on top of ``n_trials``)."""
        concurrent = not _in_process(self.launcher)  # threads watch remote jobs, even 1
        slots = self.settings.n_jobs if concurrent else 1
        self.per_slot = SlotOverrides(self.settings.slot_overrides, slots)
        started = 0
        next_check = time.monotonic()
        self.budget = Budget.of(
            self.settings.timeout, self.settings.timeout_prune, self.settings.terminator
        )
        self.stopped = stopped
        try:
            with queued_heartbeat(
                self.storage,
                self._running_trials,
                self.settings.heartbeat_interval,
                lambda numbers: slurm.queued_again(self.config, numbers),
            ):
                while started < n_trials + self.continuations or self.running:
                    may_start = not self.running or self.settings.async_slots
                    while (
                        may_start
                        and len(self.running) < slots
                        and started < n_trials + self.continuations
                        and not self.closed
                        and not stopped.is_set()
                    ):
                        if room_left(self.settings, self.study) <= 0:
                            log.info(
                                "the study reached max_total_trials=%s",
                                self.settings.max_total_trials,
                            )
                            n_trials, self.continuations, self.closed = started, 0, True
                            self.ended = Ended("max_total_trials")
                            break
                        ended = self.budget.stop(self.study, len(self.running))
                        if ended is not None:  # the time budget is spent, or the terminator
                            n_trials, self.continuations, self.closed = started, 0, True
                            self.ended = ended
                            break
                        trial, overrides = self._ask()
                        started += 1
                        if concurrent:
                            launched = _in_thread(self._launch, trial, overrides)
                            self.running[launched] = (trial, time.monotonic())
                        else:  # in this process, now (Ctrl-C reaches the job)
                            self._run_here(trial, overrides)
                            self._check_failures()
                    if stopped.is_set():
                        raise Stop(stopped.signum)
                    if not self.running:
                        continue
                    done, _ = wait(list(self.running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for fut in done:
                        trial, t0 = self.running.pop(fut)
                        self._finish(trial, fut, time.monotonic() - t0)
                    if self.settings.heartbeat_interval and time.monotonic() >= next_check:
                        next_check = time.monotonic() + self.settings.heartbeat_interval
                        self._drop_dead_jobs()
                    self._check_failures()
        except (Stop, KeyboardInterrupt) as e:
            self.ended = Ended("interrupted")
            self._interrupted(f"interrupted ({signal.Signals(stopped.signum).name} to the sweeper)")
            if isinstance(e, KeyboardInterrupt):
                raise Stop(stopped.signum) from None
            raise

    def _running_trials(self) -> list[optuna.Trial]:
        return [trial for trial, _ in list(self.running.values())]

    def _ask(self) -> tuple[optuna.Trial, tuple[str, ...]]:
        """A new trial, sampled, and its job's overrides."""
        fail_stale(self.study, self.storage)
        for _ in range(3):
            trial = self.study.ask()
            # at once: a job (or this sweeper) killed from now on leaves a stale trial
            if first_beat(self.storage, trial):
                break
            log.warning(
                "trial %d was failed as stale by another worker while this one asked it "
                "(hydra.sweeper.grace_period=%s is shorter than the sampler's ask?); "
                "asking another",
                trial.number,
                self.settings.grace_period,
            )
        else:
            raise SystemExit(
                "error: three trials in a row were failed as stale while they were asked: "
                f"raise hydra.sweeper.grace_period={self.settings.grace_period} above the time the "
                "sampler takes to ask a trial"
            )
        self.budget.mark(trial)  # timeout_prune: the job's deadline
        try:
            overrides = self.plan.configure(trial, self.config, self.settings.custom_search_space)
        except Exception as e:  # e.g. custom_search_space: never left RUNNING
            fail(self.study, trial, f"{type(e).__name__}: {e}")
            raise SystemExit(
                f"error: trial {trial.number} could not be configured: {type(e).__name__}: {e}"
            ) from None
        overrides += self.per_slot.take(trial)  # its slot's values, if any
        if self.settings.study_name is None:  # the job must find the study Optuna named
            overrides += (f"hydra.sweeper.study_name={self.study.study_name}",)
        self.console.started(trial)
        return trial, overrides

    def _launch(self, trial: optuna.Trial, overrides: tuple[str, ...]) -> JobReturn:
        return self.launcher.launch([overrides], initial_job_idx=trial.number)[0]

    def _run_here(self, trial: optuna.Trial, overrides: tuple[str, ...]) -> None:
        """One job in this process (Hydra's basic launcher); listed in ``running`` meanwhile,
        so an interrupt marks its trial."""
        fut: Future = Future()
        t0 = time.monotonic()
        self.running[fut] = (trial, t0)
        self.stopped.job_in_process = True  # from now on a signal stops the job at once
        if self.stopped.is_set():  # it came since the ask: the job does not start
            self.stopped.job_in_process = False
            raise Stop(self.stopped.signum)
        try:
            fut.set_result(self._launch(trial, overrides))
        except Exception as e:  # noqa: BLE001 - the launcher itself failed
            fut.set_exception(e)
        finally:
            self.stopped.job_in_process = False
        del self.running[fut]
        self._finish(trial, fut, time.monotonic() - t0)

    def _finish(self, trial: optuna.Trial, fut: Future, seconds: float) -> None:
        """Tell Optuna the outcome of one job."""
        self.per_slot.free(trial.number)
        try:
            ret: JobReturn = fut.result()
        except Exception as e:  # the launcher itself failed (e.g. a SLURM submission)
            ret = JobReturn(status=JobStatus.FAILED, _return_value=e)
        verdict = of_job(ret, len(self.settings.directions))
        stored = tell_verdict(self.study, trial, verdict)
        queued = verdict.resume and stored is not None
        if queued:
            queued = requeue(self.study, stored, verdict.reason, self.settings.max_retry)
            self._continue(queued)
        self.tally.count(verdict, continued=queued)
        if verdict.crash:
            log.error(
                "trial %d failed: %s\n  overrides: %s",
                trial.number,
                verdict.reason,
                " ".join(ret.overrides or []),
            )
        self.console.finished(trial.number, verdict.state, verdict.reason, seconds, stored)

    def _drop_dead_jobs(self) -> None:
        """Stop waiting for jobs whose trial went stale (the job died: killed, cancelled,
        node lost) even if the launcher never returns; their trials are continued."""
        fail_stale(self.study, self.storage)
        if not self.running:
            return
        stored = {t.number: t for t in self.study.get_trials(deepcopy=False)}
        for fut, (trial, t0) in list(self.running.items()):
            if stored[trial.number].state == TrialState.FAIL:
                del self.running[fut]  # its thread may stay blocked in the launcher: abandoned
                self.per_slot.free(trial.number)
                root = stored[trial.number].user_attrs.get(names.RETRY_OF, trial.number)
                queued = any(
                    t.state == TrialState.WAITING and t.user_attrs.get(names.RETRY_OF) == root
                    for t in stored.values()
                )
                self._continue(queued)
                self.tally.count(Verdict(TrialState.FAIL, STALE), continued=queued)
                seconds = time.monotonic() - t0
                self.console.finished(
                    trial.number, TrialState.FAIL, STALE, seconds, stored[trial.number]
                )

    def _continue(self, queued: bool) -> None:
        """A continuation of one of this invocation's trials was queued: it runs here too."""
        if queued and not self.closed:
            self.continuations += 1
            self.console.one_more()

    def _check_failures(self) -> None:
        self.tally.check_failure_rate(
            self.settings.max_failure_rate, self.settings.min_trials_for_failure_rate
        )

    def _interrupted(self, reason: str) -> None:
        """Tell the running trials whose jobs had finished (their ``trial.json``); mark the
        rest FAIL with ``reason``, and cancel their cluster jobs (``slurm.py``)."""
        failed: list[int] = []
        for trial, _ in list(self.running.values()):
            job = trial_json.record_of(self.config, trial.number)
            state = trial_json.state_of(job)
            try:
                if state == TrialState.COMPLETE and job.get("values"):
                    tell(self.study, trial, values=job["values"])
                    log.info("trial %d had finished: recorded as usual", trial.number)
                    continue
                if state == TrialState.PRUNED:
                    tell(self.study, trial, state=TrialState.PRUNED)
                    continue
            except Exception as e:  # noqa: BLE001 - never hide the interrupt
                log.warning("trial %d: could not record its finished job: %s", trial.number, e)
            stored = fail(self.study, trial, reason)
            log.warning("trial %d marked FAIL (%s)", trial.number, reason)
            failed.append(trial.number)
            if stored is not None:  # the next sweep on this study continues it first
                with contextlib.suppress(Exception):
                    requeue(self.study, stored, reason, self.settings.max_retry)
        launched = slurm.since(t0 for _, t0 in self.running.values())
        slurm.cancel(self.config, failed, launched)


def _in_thread(fn: Callable[..., Any], *args: Any) -> Future:
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

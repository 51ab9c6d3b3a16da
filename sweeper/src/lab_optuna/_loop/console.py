"""What a person sees during a sweep: one line per finished trial and, on a TTY, a progress
bar over the trials with an ETA. Per-trial details stay in each job's own log."""

from __future__ import annotations

import logging
import sys
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger("sweeper")


def route_optuna_logging() -> None:
    """Optuna's messages through Python logging (Hydra's format, console and log file)
    instead of its own colour handler, whose escape codes end up in captured logs."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema checks: "setup plugin ..."


class Console:
    """Per-trial lines ``trial 7 COMPLETE 0.9012 (best 0.9050, trial 3) | 8 steps | 41 s``."""

    def __init__(self, total: int, directions: list[str], study: optuna.Study) -> None:
        self.total, self.study, self.single = total, study, len(directions) == 1
        self.finished_n = 0
        self.bar = None
        if total and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="trial", desc="sweep", dynamic_ncols=True)

    def one_more(self) -> None:
        """A continuation joined this sweep's trials: the counter's total grows by one."""
        self.total += 1
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def started(self, trial: optuna.Trial) -> None:
        shown = " ".join(_short(f"{k}={v}") for k, v in trial.params.items())
        log.info("trial %d: %s", trial.number, shown or "(no searched parameter)")

    def finished(
        self,
        number: int,
        state: TrialState,
        reason: str,
        seconds: float,
        frozen: FrozenTrial | None,
    ) -> None:
        self.finished_n += 1
        state = (frozen.state if frozen is not None else state).name
        value = ""
        if frozen is not None and frozen.values:
            value = " " + "/".join(f"{v:.4g}" for v in frozen.values)
        steps = len(frozen.intermediate_values) if frozen is not None else 0
        line = (
            f"[{self.finished_n}/{self.total}] trial {number} {state}{value}{self._best()}"
            f"{f' | {steps} steps' if steps else ''} | {seconds:.0f} s"
        )
        if reason and state != TrialState.COMPLETE.name:
            line += f" | {reason.splitlines()[0][:120]}"
        if self.bar is not None:
            from tqdm.contrib.logging import logging_redirect_tqdm

            with logging_redirect_tqdm():
                log.info(line)
            self.bar.update(1)
        else:
            log.info(line)

    def _best(self) -> str:
        if not self.single:
            return ""
        try:
            best = self.study.best_trial
        except ValueError:  # no complete trial yet
            return ""
        return f" (best {best.value:.4g}, trial {best.number})"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def show_value(value: Any) -> str:
    """A value for a log line: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _short(override: str) -> str:
    """``key=0.0016235433866539542`` → ``key=0.001624`` (the full value is in the study)."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}={number:.4g}" if "." in value or "e" in value else override


#: Launchers' own per-launch lines ("Launching 1 jobs locally", "#0 : ..."): the sweeper's
#: "trial N: ..." line says the same once per trial.
LAUNCHER_LOGGERS = (
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
)


def quiet_launchers() -> None:
    for name in LAUNCHER_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

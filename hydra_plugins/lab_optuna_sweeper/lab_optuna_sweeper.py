"""Hydra plugin entry point (Hydra loads plugins only from the ``hydra_plugins`` namespace).

``LabOptunaSweeper`` is hydra-optuna-sweeper's ``OptunaSweeper`` with its implementation
swapped for ``sweeper.core.LabSweeperImpl``; select it with ``hydra/sweeper=lab_optuna``.
"""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class LabOptunaSweeper(OptunaSweeper):
    def __init__(self, **kwargs: Any) -> None:  # noqa: D107 - keys: conf/hydra/sweeper/lab_optuna.yaml
        from sweeper.core import LabSweeperImpl

        self.sweeper = LabSweeperImpl(**kwargs)

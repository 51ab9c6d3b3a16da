"""Hydra plugin entry points (Hydra loads plugins only from the ``hydra_plugins`` namespace).

Hydra imports this module at every app start, so it stays light: no Optuna until a sweep.

- ``LabOptunaSweeper``: the sweeper (``lab_optuna/_sweeper.py``); ``hydra/sweeper=lab_optuna``,
  whose config (every key) ``lab_optuna/_keys/config.py`` stores in Hydra's ConfigStore here.
- ``LabOptunaSearchPath``: puts this package's configs (``conf/hydra/sweeper/{sampler,pruner}``)
  on every app's search path, so any installed Hydra app can select them without copying a file.
"""

from __future__ import annotations

from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra.plugins.sweeper import Sweeper

from lab_optuna._keys import config

config.store()


class LabOptunaSweeper(Sweeper):
    """``hydra/sweeper=lab_optuna``: see ``lab_optuna/_sweeper.py``."""

    def __init__(self, **config: Any) -> None:
        from lab_optuna._sweeper import LabOptunaSweeper as Impl

        self.impl = Impl(**config)

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self.impl.sweep(arguments)


class LabOptunaSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append("lab-optuna", "pkg://hydra_plugins.lab_optuna_sweeper.conf")

"""What hydra-optuna-sweeper lacks: pruning, pinning phase 1's best, resume, failures.

The Hydra plugin entry point is ``hydra_plugins/lab_optuna_sweeper`` (Hydra only loads
plugins from the ``hydra_plugins`` namespace); all logic lives here.
"""

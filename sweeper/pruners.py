"""The sweep's pruner, rebuilt inside each job from its own Hydra config."""

from __future__ import annotations

import optuna


def pruner_from_hydra() -> optuna.pruners.BasePruner:
    """Instantiate ``hydra.sweeper.pruner`` of the running job (NopPruner if unset)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    node = HydraConfig.get().sweeper.get("pruner") if HydraConfig.initialized() else None
    return instantiate(node) if node else optuna.pruners.NopPruner()

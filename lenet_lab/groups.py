"""The config groups a run is made of, and which option the running Hydra job chose.

``GROUPS`` is the one list of the technique groups (``conf/<group>/``): summary.json records
each one's option (``choices``) and ``analysis`` reads them as categorical parameters.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

#: The technique groups, in the order the summary's ``choices`` and the log lines list them.
GROUPS: tuple[str, ...] = (
    "model",
    "optimizer",
    "regularizer",
    "normalization",
    "scheduler",
    "loss",
    "augmentation",
    "averaging",
    "early_stopping",
    "logger",
)


def command_line_keys() -> set[str]:
    """Keys set by this run's overrides (empty outside a Hydra run, e.g. the compose API)."""
    from hydra.core.hydra_config import HydraConfig

    from lab_optuna.overrides import key_of

    if not HydraConfig.initialized():
        return set()
    return {key_of(o) for o in HydraConfig.get().overrides.task}


def group_choice(cfg: DictConfig, group: str) -> str:
    """The option chosen for ``group`` (``regularizer=l2``); outside a Hydra run (the compose
    API) its ``_target_``'s last name, or ``none``."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get(group)
        if choice is not None:
            return str(choice)
    target = OmegaConf.select(cfg, f"{group}._target_", default=None)
    return str(target).rsplit(".", 1)[-1] if target else "none"

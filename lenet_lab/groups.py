"""The config groups a run is made of, and which option the running Hydra job chose.

``GROUPS`` is the list of the technique groups (``conf/<group>/``), read from the one place
that declares them, ``conf/train.yaml``'s defaults list: summary.json records each one's
option (``choices``) and ``analysis`` reads them as categorical parameters.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

#: ``conf/train.yaml``'s groups that are not techniques: the data, the trainer's settings and
#: the two kinds of presets.
NOT_TECHNIQUES = ("data", "trainer", "experiment", "hparams_search")
TRAIN_YAML = Path(__file__).resolve().parents[1] / "conf" / "train.yaml"


def _technique_groups() -> tuple[str, ...]:
    defaults = OmegaConf.load(TRAIN_YAML).get("defaults", [])
    entries = [key for d in defaults if isinstance(d, DictConfig) for key in d]
    return tuple(str(k) for k in entries if k not in NOT_TECHNIQUES)


#: The technique groups, in train.yaml's order (the summary's ``choices``, the log lines).
GROUPS: tuple[str, ...] = _technique_groups()


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

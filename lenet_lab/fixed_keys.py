"""The lab's fixed keys, typed: ``conf/train.yaml``'s own, ``trainer.*`` and ``data.*``.

These dataclasses say each key's type; each key's value and comment stay in the YAML file a
student reads (``tests/lenet_lab/test_config.py`` checks that both name the same keys), and
``value_types.check_types`` checks a composed config against them. The keys of the
``_target_`` groups (optimizer, scheduler, ...) differ by option: their constructors'
signatures and the options' defaults type them (``value_types``). Not a schema in Hydra's
ConfigStore, on purpose (as the sweeper's ``SweeperConf``): a typed node would fail at
composition, in Hydra's multi-line error and exit 1, before train.py could name the key.
"""

from dataclasses import dataclass


@dataclass
class TrainKeys:
    """``conf/train.yaml``'s own keys."""

    task_name: str
    seed: int
    optimized_metric: str


@dataclass
class TrainerKeys:
    """``conf/trainer/default.yaml``."""

    epochs: int
    device: str
    num_threads: int | None
    cuda_graph: bool
    progress_bar: bool
    save_samples: bool
    save_curves: bool
    save_checkpoint: bool
    resume: bool


@dataclass
class DataKeys:
    """``conf/data/fashion_mnist.yaml`` (``fashion_mnist_subset`` changes values, not keys)."""

    name: str
    root: str | None
    download: bool
    train_size: int | None
    val_size: int | None
    val_split: str
    holdout_size: int
    batch_size: int
    val_batch_size: int
    normalize: bool
    mean: float
    std: float


#: Where each schema's keys sit in the composed config ("" = the top).
SCHEMAS: dict[str, type] = {"": TrainKeys, "trainer": TrainerKeys, "data": DataKeys}

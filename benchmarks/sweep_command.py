"""The lab sweep every search benchmark starts from, and the data root they need.

``sweep_command(preset, study, sweep_dir, db, *overrides)`` is ``python train.py -m
hparams_search=<preset>`` on the real 10k/2k subset, its study ``study`` alone in the SQLite
file ``db``, its jobs in ``sweep_dir``, without the per-trial curves and checkpoints (files a
benchmark never reads); each benchmark adds its own overrides.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Per-trial files a benchmark never reads.
QUIET = ("trainer.save_curves=false", "trainer.save_checkpoint=false")


def sweep_command(preset: str, study: str, sweep_dir: Path, db: Path, *overrides: str) -> list[str]:
    """The argv of one ``train.py -m`` sweep (run it from the repository root)."""
    return [
        sys.executable,
        "train.py",
        "-m",
        f"hparams_search={preset}",
        "data=fashion_mnist_subset",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage=sqlite:///{db}",
        f"hydra.sweeper.study_name={study}",
        *QUIET,
        *overrides,
    ]


def require_data_root() -> str:
    """``FASHION_MNIST_ROOT``, or exit with one line saying to set it."""
    root = os.environ.get("FASHION_MNIST_ROOT")
    if not root:
        sys.exit("error: set FASHION_MNIST_ROOT to the folder holding FashionMNIST/raw/")
    return root

"""The real FashionMNIST (needs FASHION_MNIST_ROOT): the sheet's subset learns in 2 epochs.

How noisy 2 epochs are (data=fashion_mnist_subset trainer.epochs=2, best val accuracy on the
2,000 validation images, CPU, one thread; seeds 0-15 and 42):

* the sheet's SGD lr 0.1 momentum 0.9: 0.717-0.779 (mean ~0.75), and seed 13 collapses to
  chance (0.10): lr 0.1 with momentum 0.9 sits at the edge of stability for LeNet-5. Seed 42
  gives 0.7685 with one thread and 0.7545 with two (thread count changes reduction order),
  so "> 0.75" on this config is a coin flip decided by the seed and the machine.
* the same SGD with normalization=batchnorm (exercise 7): 0.7555-0.8215 (mean ~0.79), seed 42
  0.773, no collapse.

So the 0.75 bar is asserted where it is robust (BatchNorm, SGD defaults unchanged), and the
bare baseline gets a bar it clears on every non-collapsed seed.
"""

from __future__ import annotations

import json

import pytest

from lenet_lab.record import Status

pytestmark = pytest.mark.integration

SUBSET = (
    "data=fashion_mnist_subset",
    "trainer.epochs=2",
    "optimizer=sgd",
    "seed=42",
    "trainer.progress_bar=false",
    "trainer.save_samples=false",
)


def _summary(proc):
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((proc.out_dir / "summary.json").read_text())


def test_subset_two_epochs_with_batchnorm_above_075(run_train, real_data_root):
    summary = _summary(run_train(*SUBSET, "normalization=batchnorm", data_root=real_data_root))
    assert summary["status"] == Status.COMPLETED and summary["epochs_run"] == 2
    assert summary["config"]["optimizer"] == {
        "_target_": "torch.optim.SGD",
        "_partial_": True,
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": False,
    }
    assert summary["best_val_acc"] > 0.75


def test_subset_two_epochs_sheet_baseline_learns(run_train, real_data_root):
    summary = _summary(run_train(*SUBSET, data_root=real_data_root))
    assert summary["status"] == Status.COMPLETED and summary["n_params"] == 44_426
    assert summary["best_val_acc"] > 0.70  # 0.75-0.77 at seed 42; chance is 0.10

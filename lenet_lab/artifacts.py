"""The columns of metrics.csv and curves.png (summary.json: ``record.py``; the writers of
metrics.csv and best.pt are callbacks: ``callbacks.py``)."""

from __future__ import annotations

from pathlib import Path

METRIC_COLUMNS = [
    "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
    "param_min", "param_max", "param_mean", "param_std",
    "feat_in_min", "feat_in_max", "feat_in_mean", "feat_in_std",
    "feat_out_min", "feat_out_max", "feat_out_mean", "feat_out_std",
]  # fmt: skip


def plot_curves(rows: list[dict[str, float]], path: Path, title: str = "") -> Path | None:
    """Loss and val_loss, accuracies, and the learning rate against the epoch."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(
        3, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.4]}
    )
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="loss (train)")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="val_loss")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [r["train_acc"] for r in rows], label="train_acc")
    ax_acc.plot(epochs, [r["val_acc"] for r in rows], label="val_acc")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    ax_lr.plot(epochs, [r["lr"] for r in rows], color="tab:green")
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("epoch")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path

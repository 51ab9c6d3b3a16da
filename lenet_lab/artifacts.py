"""curves.png, the run's learning curves (the columns of metrics.csv and summary.json's
fields: ``record.py``; the writers of metrics.csv and best.pt are callbacks: ``callbacks.py``)."""

from __future__ import annotations

from pathlib import Path

from . import record as rec


def plot_curves(rows: list[dict[str, float]], path: Path, title: str = "") -> Path | None:
    """Loss and val_loss, accuracies, and the learning rate against the epoch."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r[rec.EPOCH] for r in rows]
    mark = {"marker": "o", "ms": 3, "markevery": max(1, -(-len(rows) // 40))}  # 1 epoch: a dot
    fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(
        3, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.4]}
    )
    ax_loss.plot(epochs, [r[rec.TRAIN_LOSS] for r in rows], label="loss (train)", **mark)
    ax_loss.plot(epochs, [r[rec.VAL_LOSS] for r in rows], label="val_loss", **mark)
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [r[rec.TRAIN_ACC] for r in rows], label="train_acc", **mark)
    ax_acc.plot(epochs, [r[rec.VAL_ACC] for r in rows], label="val_acc", **mark)
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    ax_lr.plot(epochs, [r[rec.LR] for r in rows], color="tab:green", **mark)
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("epoch")
    ax_lr.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs
    if len(set(epochs)) == 1:
        ax_lr.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
    if title:  # wrapped onto as many lines as it takes to fit the figure's width
        text = fig.suptitle(title, fontsize=9)
        for width in range(len(title), 10, -4):
            text.set_text(textwrap.fill(title, width, break_long_words=True))
            if text.get_window_extent(fig.canvas.get_renderer()).width <= 0.95 * fig.bbox.width:
                break
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path

"""FashionMNIST as in-memory tensors (exercise 1).

The IDX files are read once per process by ``torchvision.datasets.FashionMNIST`` and kept
as uint8 tensors; each run slices batches from float tensors already on its device, so the
training loop never touches PIL or a DataLoader.

``python -m lenet_lab.data [--out DIR]`` prints the dataset facts the lab asks for and writes
``samples.png`` (one titled image per class) without training.
"""

from __future__ import annotations

import argparse
import logging
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

ENV_ROOT = "FASHION_MNIST_ROOT"
DEFAULT_ROOT = "data"
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# IDX file names per split (uncompressed, where torchvision looks for them).
FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


class DataError(RuntimeError):
    """The dataset is missing or malformed (message is one line, names the file/folder)."""


@dataclass(frozen=True)
class Split:
    """One split as tensors: ``x`` float N×1×28×28 in [0, 1] (or standardized), ``y`` int64 N."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class DataSource:
    """Where the raw IDX files are and whether we may download them."""

    root: Path
    download: bool
    from_env: bool

    @property
    def raw_dir(self) -> Path:
        return self.root / "FashionMNIST" / "raw"


def resolve_source(root: str | None, download: bool) -> DataSource:
    """``FASHION_MNIST_ROOT`` (read-only, never download) wins; else ``root`` or ``data/``."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return DataSource(Path(env).expanduser().resolve(), download=False, from_env=True)
    return DataSource(Path(root or DEFAULT_ROOT).expanduser().resolve(), download, False)


def check_idx(path: Path, magic: int) -> int:
    """Validate an IDX file's header and size; return its number of items."""
    if not path.is_file():
        raise DataError(f"missing IDX file: {path}")
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(8 if magic == LABEL_MAGIC else 16)
    ndim = 1 if magic == LABEL_MAGIC else 3
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"truncated IDX file (header): {path}")
    found, *dims = struct.unpack(f">{1 + ndim}I", header[: 4 + 4 * ndim])
    if found != magic:
        raise DataError(f"not an IDX file (magic 0x{found:08x}, expected 0x{magic:08x}): {path}")
    if ndim == 3 and tuple(dims[1:]) != (28, 28):
        raise DataError(f"images are {dims[1]}x{dims[2]}, expected 28x28: {path}")
    expected = 4 + 4 * ndim + dims[0] * (784 if ndim == 3 else 1)
    if size != expected:
        raise DataError(f"truncated or padded IDX file ({size} bytes, expected {expected}): {path}")
    return dims[0]


def _check_split(raw: Path, train: bool) -> None:
    images, labels = (raw / name for name in FILES[train])
    n_images, n_labels = check_idx(images, IMAGE_MAGIC), check_idx(labels, LABEL_MAGIC)
    if n_images != n_labels:
        raise DataError(f"{images.name} has {n_images} images but {labels.name} {n_labels} labels")


_RAW_CACHE: dict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = {}
_SPLIT_CACHE: dict[tuple, Any] = {}


def _read_raw(source: DataSource, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images N×28×28 and int64 labels, read from disk once per process."""
    key = (str(source.root), train)
    if key in _RAW_CACHE:
        return _RAW_CACHE[key]
    from torchvision.datasets import FashionMNIST

    # torchvision's FashionMNIST wants the files of both splits, whichever it loads
    missing = [f for f in FILES[True] + FILES[False] if not (source.raw_dir / f).exists()]
    have_files = not missing
    if not have_files and not source.download:
        hint = f"${ENV_ROOT}" if source.from_env else f"data.root (or set ${ENV_ROOT})"
        raise DataError(
            f"FashionMNIST not found in {source.raw_dir} (missing {', '.join(missing)}) and "
            f"download is off: point {hint} at a folder holding FashionMNIST/raw/"
        )
    if not have_files:
        try:
            FashionMNIST(str(source.root), train=train, download=True)
        except Exception as e:  # network errors come in many types
            reason = " ".join(str(e).split())  # torchvision's message spans several lines
            raise DataError(
                f"could not download FashionMNIST into {source.raw_dir} ({type(e).__name__}: "
                f"{reason}); set ${ENV_ROOT} to a folder holding FashionMNIST/raw/"
            ) from None
    _check_split(source.raw_dir, train)
    ds = FashionMNIST(str(source.root), train=train, download=False)
    _RAW_CACHE[key] = (ds.data, ds.targets.long())
    log.debug("read %s split from %s", "train" if train else "test", source.raw_dir)
    return _RAW_CACHE[key]


def load_split(
    source: DataSource,
    train: bool,
    size: int | None = None,
    normalize: bool = False,
    mean: float = 0.2860,
    std: float = 0.3530,
    device: torch.device | str = "cpu",
) -> Split:
    """First ``size`` images of a split as float tensors on ``device`` (cached per process)."""
    device = torch.device(device)
    key = (str(source.root), train, size, normalize, mean, std, str(device))
    if key not in _SPLIT_CACHE:
        images, labels = _read_raw(source, train)
        if size is not None:
            if size > len(labels):
                split = "train" if train else "validation"
                raise DataError(f"{split} size {size} > {len(labels)} images in {source.raw_dir}")
            images, labels = images[:size], labels[:size]
        x = images.to(device).unsqueeze(1).float().div_(255.0)  # N×1×28×28 in [0, 1]
        if normalize:
            x = x.sub_(mean).div_(std)
        _SPLIT_CACHE[key] = Split(x.contiguous(), labels.to(device))
    return _SPLIT_CACHE[key]


#: The hold-out split's seed: fixed, independent of the run's ``seed``, so every run and every
#: trial of a search validates on the same images.
HOLDOUT_SEED = 20240611


def holdout_indices(
    labels: torch.Tensor, size: int, seed: int = HOLDOUT_SEED
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, holdout)`` index tensors (sorted, disjoint, covering ``labels``): ``size``
    images held out, stratified by class (each class's share of the hold-out is its share of
    the split, rounded by largest remainder), drawn with ``seed``."""
    n = len(labels)
    if not 1 <= size < n:
        raise DataError(f"data.holdout_size={size} must be in [1, {n - 1}] for {n} images")
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * size / n
    quota = exact.floor().long()
    extra = size - int(quota.sum())
    order = sorted(range(len(classes)), key=lambda i: (-(exact[i] - quota[i]).item(), i))
    for i in order[:extra]:
        quota[i] += 1
    g = torch.Generator().manual_seed(seed)
    held = []
    for c, k in zip(classes.tolist(), quota.tolist(), strict=True):
        members = torch.nonzero(labels == c).flatten()
        held.append(members[torch.randperm(len(members), generator=g)[:k]])
    holdout = torch.cat(held).sort().values
    keep = torch.ones(n, dtype=torch.bool)
    keep[holdout] = False
    return torch.nonzero(keep).flatten(), holdout


def load_holdout(
    source: DataSource,
    holdout_size: int,
    train_size: int | None = None,
    val_size: int | None = None,
    normalize: bool = False,
    mean: float = 0.2860,
    std: float = 0.3530,
    device: torch.device | str = "cpu",
) -> tuple[Split, Split]:
    """Training split minus a stratified hold-out, and the hold-out as validation; the test
    split is never read. ``train_size``/``val_size`` keep the first N of each."""
    device = torch.device(device)
    key = (
        "holdout",
        str(source.root),
        holdout_size,
        train_size,
        val_size,
        normalize,
        mean,
        std,
        str(device),
    )
    if key not in _SPLIT_CACHE:
        images, labels = _read_raw(source, True)
        train_idx, val_idx = holdout_indices(labels, holdout_size)
        parts = []
        for idx, size, name in ((train_idx, train_size, "train"), (val_idx, val_size, "hold-out")):
            if size is not None:
                if size > len(idx):
                    raise DataError(f"{name} size {size} > {len(idx)} images left for it")
                idx = idx[:size]
            x = images[idx].to(device).unsqueeze(1).float().div_(255.0)
            if normalize:
                x = x.sub_(mean).div_(std)
            parts.append(Split(x.contiguous(), labels[idx].to(device)))
        _SPLIT_CACHE[key] = (parts[0], parts[1])
    return _SPLIT_CACHE[key]


def clear_cache() -> None:
    """Forget every cached split (tests use this to prove the cache is hit)."""
    _RAW_CACHE.clear()
    _SPLIT_CACHE.clear()


def describe(split: Split) -> list[str]:
    """The exercise-1 facts as log lines: classes, label format, image shape."""
    h, w = split.x.shape[-2:]
    c = split.x.shape[1]
    return [
        f"classes ({len(CLASSES)}): {', '.join(f'{i}={n}' for i, n in enumerate(CLASSES))}",
        f"labels: integer class indices (dtype {split.y.dtype}, e.g. {split.y[:5].tolist()}), "
        "not one-hot",
        f"image shape H x W x C = {h} x {w} x {c} (tensor N x C x H x W = {tuple(split.x.shape)})",
    ]


def save_samples(split: Split, path: Path) -> Path:
    """Write one titled image per class (the first of each) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 5, figsize=(10, 4.6))
    for cls, ax in enumerate(axes.flat):
        idx = (split.y == cls).nonzero()
        ax.axis("off")
        if len(idx):
            ax.imshow(split.x[int(idx[0])].squeeze(0).cpu().numpy(), cmap="gray")
        ax.set_title(f"{cls}: {CLASSES[cls]}", fontsize=9)
    fig.suptitle("FashionMNIST: one image per class")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet_lab.data",
        description="Print FashionMNIST facts (classes, label format, shape, pixel stats) and "
        "write samples.png, without training.",
    )
    parser.add_argument(
        "--root", default=None, help=f"dataset root (default: ${ENV_ROOT} or data/)"
    )
    parser.add_argument(
        "--out", default="outputs", help="folder for samples.png (default: outputs/)"
    )
    parser.add_argument("--no-download", action="store_true", help="never download")
    args = parser.parse_args(argv)
    try:
        source = resolve_source(args.root, download=not args.no_download)
        train, val = load_split(source, True), load_split(source, False)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in describe(train):
        print(line)
    print(f"train: {len(train)} images, pixel mean {train.x.mean():.4f} std {train.x.std():.4f}")
    print(f"validation (test split): {len(val)} images")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"wrote {save_samples(train, out / 'samples.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

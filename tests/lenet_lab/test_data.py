"""The FashionMNIST loader (exercise 1) on tiny IDX files: shapes, cache, clear errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import (
    ENV_ROOT,
    IDX_NAMES,
    MALFORMED_KINDS,
    REPO_ROOT,
    make_malformed_root,
    make_tiny_arrays,
    write_idx,
    write_tiny_dataset,
)
from lenet_lab import data
from lenet_lab.data import DataError, DataSource, load_split, resolve_source


def _source(root, download=False):
    return DataSource(root.resolve(), download=download, from_env=False)


def test_tiny_split_shapes_and_values(tiny_data_root):
    train = load_split(_source(tiny_data_root), True)
    val = load_split(_source(tiny_data_root), False)
    assert train.x.shape == (512, 1, 28, 28) and len(train) == 512
    assert val.x.shape == (128, 1, 28, 28) and len(val) == 128
    assert train.x.dtype == torch.float32 and train.y.dtype == torch.int64
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0
    assert sorted(train.y.unique().tolist()) == list(range(10))
    # the bytes on disk, unchanged
    images, labels = make_tiny_arrays(512, seed=0)
    assert torch.equal(train.y, torch.from_numpy(labels).long())
    assert torch.allclose(train.x[:, 0], torch.from_numpy(images).float() / 255)


def test_size_and_normalize(tiny_data_root):
    src = _source(tiny_data_root)
    sub = load_split(src, True, size=100)
    assert len(sub) == 100
    full = load_split(src, True)
    assert torch.equal(sub.x, full.x[:100])
    norm = load_split(src, True, normalize=True, mean=0.5, std=0.25)
    assert torch.allclose(norm.x, (full.x - 0.5) / 0.25, atol=1e-6)
    with pytest.raises(DataError, match=r"train size 600 > 512 images"):
        load_split(src, True, size=600)


def test_second_load_hits_the_cache(tmp_path, tiny_data_root):
    root = tmp_path / "copy"
    shutil.copytree(tiny_data_root, root)
    src = _source(root)
    first = load_split(src, True)
    assert load_split(src, True) is first  # same Split object, same tensors
    raw = data._RAW_CACHE[(str(src.root), True)]
    # the disk is read once: with the files gone, other views of the split still load
    shutil.rmtree(root / "FashionMNIST")
    sub = load_split(src, True, size=10)
    assert data._RAW_CACHE[(str(src.root), True)] is raw
    assert torch.equal(sub.x, first.x[:10])
    data.clear_cache()
    with pytest.raises(DataError, match="not found"):
        load_split(src, True)


def test_env_root_wins_and_never_downloads(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_ROOT, str(tmp_path))
    src = resolve_source("elsewhere", download=True)
    assert src.root == tmp_path.resolve() and src.download is False and src.from_env
    monkeypatch.delenv(ENV_ROOT)
    src = resolve_source(None, download=True)
    assert src.root == Path("data").resolve()  # relative to where train.py is launched
    assert src.download is True and not src.from_env


def test_missing_data_from_env_names_folder_and_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_ROOT, str(tmp_path))
    with pytest.raises(DataError) as err:
        load_split(resolve_source(None, download=True), True)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg
    assert ENV_ROOT in msg and "\n" not in msg
    assert not (tmp_path / "FashionMNIST").exists()  # never writes into FASHION_MNIST_ROOT


def test_missing_data_download_off(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_ROOT, raising=False)
    with pytest.raises(DataError) as err:
        load_split(resolve_source(str(tmp_path), download=False), False)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg
    assert "data.root" in msg and ENV_ROOT in msg and "\n" not in msg


def test_download_impossible_is_one_clear_line(monkeypatch, tmp_path):
    from torchvision.datasets import FashionMNIST

    monkeypatch.delenv(ENV_ROOT, raising=False)
    # a mirror nobody listens on: the download fails at once, with or without a network
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError) as err:
        load_split(resolve_source(str(tmp_path), download=True), True)
    msg = str(err.value)
    assert msg.startswith(f"could not download FashionMNIST into {tmp_path / 'FashionMNIST'}")
    assert ENV_ROOT in msg
    assert "\n" not in msg  # torchvision's multi-line error is folded into one line


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_idx_is_a_clear_data_error(tmp_path, kind):
    file = "train_labels" if kind == "count_mismatch" else "train_images"
    broken = make_malformed_root(tmp_path, kind, file)
    expected = {
        "truncated": r"truncated or padded IDX file",
        "truncated_header": r"truncated IDX file \(header\)",
        "wrong_magic": r"not an IDX file \(magic 0x00000802, expected 0x00000803\)",
        "count_mismatch": r"has 64 images but train-labels-idx1-ubyte 63 labels",
        "missing": r"not found .*missing train-images-idx3-ubyte",
    }[kind]
    with pytest.raises(DataError, match=expected) as err:
        load_split(_source(tmp_path), True)
    msg = str(err.value)
    assert "\n" not in msg
    assert broken.name in msg or str(broken.parent) in msg


def test_wrong_image_size_is_reported(tmp_path):
    write_tiny_dataset(tmp_path, n_train=64, n_test=32)
    path = tmp_path / "FashionMNIST" / "raw" / IDX_NAMES["train_images"]
    write_idx(path, np.zeros((64, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=r"images are 32x32, expected 28x28"):
        load_split(_source(tmp_path), True)


def test_missing_other_split_is_a_data_error_not_a_torchvision_error(tmp_path, tiny_data_root):
    # torchvision's FashionMNIST wants all four files even to load one split
    shutil.copytree(tiny_data_root, tmp_path / "r")
    (tmp_path / "r" / "FashionMNIST" / "raw" / IDX_NAMES["test_images"]).unlink()
    with pytest.raises(DataError, match=r"missing t10k-images-idx3-ubyte"):
        load_split(_source(tmp_path / "r"), True)


def test_describe_lists_classes_and_shape(tiny_data_root):
    lines = data.describe(load_split(_source(tiny_data_root), True))
    assert lines[0].startswith("classes (10): 0=T-shirt/top, 1=Trouser")
    assert "not one-hot" in lines[1]
    assert "28 x 28 x 1" in lines[2]


@pytest.mark.slow  # a subprocess that renders samples.png: make test-all
def test_cli_writes_samples_and_prints_classes(tmp_path, tiny_data_root):
    import os

    env = {**os.environ, ENV_ROOT: str(tiny_data_root)}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lenet_lab.data", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "classes (10): 0=T-shirt/top" in proc.stdout and "9=Ankle boot" in proc.stdout
    assert "train: 512 images" in proc.stdout and "validation (test split): 128" in proc.stdout
    png = out / "samples.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_error_is_one_line_on_stderr(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(ENV_ROOT, str(tmp_path))
    assert data.main(["--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: FashionMNIST not found in ")
    assert captured.err.count("\n") == 1
    assert not (tmp_path / "out").exists()

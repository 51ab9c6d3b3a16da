"""``data.val_split=holdout``: a stratified hold-out of the training split (disjoint, the same
for every run seed), the rest trained on, the test split never read."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import compose_config
from lenet_lab import data
from lenet_lab.data import holdout_indices
from lenet_lab.record import Status
from lenet_lab.run import load_data, train


def labels(n: int = 1000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    weights = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])  # unbalanced classes
    return torch.multinomial(weights, n, replacement=True, generator=g)


def test_holdout_is_disjoint_complete_and_stratified():
    y = labels()
    train_idx, held = holdout_indices(y, 200)
    assert len(held) == 200 and len(train_idx) == 800
    assert set(train_idx.tolist()).isdisjoint(held.tolist())
    assert sorted(train_idx.tolist() + held.tolist()) == list(range(1000))
    full = torch.bincount(y, minlength=10).double() / len(y)
    part = torch.bincount(y[held], minlength=10).double() / len(held)
    # each class's share of the hold-out is its share of the data, within one image
    assert torch.all((part - full).abs() * len(held) <= 1.0)


def test_holdout_is_fixed_whatever_the_run_seed():
    y = labels()
    torch.manual_seed(1)
    _, a = holdout_indices(y, 100)
    torch.manual_seed(2)
    _, b = holdout_indices(y, 100)
    assert torch.equal(a, b)
    _, other = holdout_indices(y, 100, seed=7)
    assert not torch.equal(a, other)  # the seed is what fixes it


def test_a_run_with_holdout_never_reads_the_test_split(tiny_data_factory, monkeypatch, tmp_path):
    root = tiny_data_factory(n_train=600, n_test=64, seed=3)
    monkeypatch.setenv(data.ENV_ROOT, str(root))
    read = []
    real = data._read_raw
    monkeypatch.setattr(
        data, "_read_raw", lambda source, is_train: read.append(is_train) or real(source, is_train)
    )
    base = (
        "data.val_split=holdout",
        "data.holdout_size=100",
        "trainer.device=cpu",
        "trainer.progress_bar=false",
        "trainer.save_samples=false",
    )
    splits = {}
    for seed in (1, 2):
        data.clear_cache()
        splits[seed] = load_data(compose_config(*base, f"seed={seed}"), torch.device("cpu"))
    (tr1, va1), (tr2, va2) = splits[1], splits[2]
    assert len(tr1) == 500 and len(va1) == 100
    assert torch.equal(va1.x, va2.x) and torch.equal(tr1.y, tr2.y)  # stable across seeds
    train_rows = {tuple(r.flatten().tolist()[::7]) for r in tr1.x}
    assert not any(tuple(r.flatten().tolist()[::7]) in train_rows for r in va1.x)
    summary = train(compose_config(*base, "trainer.epochs=2"), tmp_path)
    assert set(read) == {True}  # only the training split's files were read
    assert summary["val_split"] == "holdout" and summary["status"] == Status.COMPLETED
    assert json.loads((tmp_path / "summary.json").read_text())["val_split"] == "holdout"


def test_holdout_size_too_large_is_a_data_error():
    with pytest.raises(data.DataError, match="holdout_size=1000"):
        holdout_indices(labels(), 1000)

"""The CUDA-graph training step against the eager one (needs a CUDA GPU).

    pytest -m cuda tests/test_cuda.py

Skipped as a whole (with the reason) where ``torch.cuda.is_available()`` is False.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lenet_lab import augment, data, engine, run
from lenet_lab.components import build_optimizer, build_scheduler
from lenet_lab.data import Split
from lenet_lab.model import LeNet5
from lenet_lab.record import Status
from lenet_lab.regularizers import Regularizer

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU (torch.cuda.is_available() is False)", allow_module_level=True)

pytestmark = pytest.mark.cuda

DEV = torch.device("cuda")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
BATCH = 32
SGD = OmegaConf.create(
    {
        "optimizer": {
            "_target_": "torch.optim.SGD",
            "_partial_": True,
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": False,
        }
    }
)
PLATEAU = OmegaConf.create(
    {
        "scheduler": {
            "_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau",
            "_partial_": True,
            "interval": "epoch",
            "monitor": "val_loss",
            "mode": "min",
            "factor": 0.1,
            "patience": 0,
            "threshold": 1e-4,
            "threshold_mode": "abs",
            "min_lr": 1e-6,
        }
    }
)


@pytest.fixture(autouse=True)
def deterministic_kernels():
    """Same cuDNN algorithms in both paths, no TF32: differences are float rounding only."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32 = True, False, False
    matmul.allow_tf32 = False
    yield
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def synthetic(n: int, seed: int = 0) -> Split:
    """Learnable images on the GPU: class c has a bright band at rows 2c+2..2c+5."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.25
    for i, c in enumerate(y.tolist()):
        x[i, 0, 2 * c + 2 : 2 * c + 6, 4:24] = 1.0
    return Split(x.to(DEV), y.to(DEV))


@pytest.fixture(scope="module")
def train_set() -> Split:
    return synthetic(10 * BATCH + 12)  # 10 graphed batches and an eager one of 12


def build(graphed: bool, data_: Split, batchnorm: bool = False):
    torch.manual_seed(0)
    model = LeNet5(batchnorm=batchnorm).to(DEV)  # dropout off
    opt = build_optimizer(SGD, model, Regularizer(), graphable=True)
    if graphed:
        step = engine.GraphedTrainStep(model, opt, data_, BATCH)
    else:
        step = engine.TrainStep(model, opt)
    return model, opt, step


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module, rtol=1e-4, atol=1e-5) -> None:
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p.float(), q.float(), rtol=rtol, atol=atol, msg=name)


def test_capture_undoes_its_warm_up(train_set):
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in LeNet5(batchnorm=True).to(DEV).state_dict().items()}
    model, opt, step = build(True, train_set, batchnorm=True)
    model.eval()
    for k, v in model.state_dict().items():
        assert torch.equal(v, init[k]), k  # weights and BatchNorm buffers as before
    bufs = [s["momentum_buffer"] for s in opt.state.values()]
    assert bufs and all(int(b.count_nonzero()) == 0 for b in bufs)
    assert all(p.grad is not None for p in model.parameters())  # in the graph's pool
    assert step.loss_sum.item() == 0 and step.correct.item() == 0
    assert isinstance(step, engine.GraphedTrainStep)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_graphed_step_matches_eager(train_set, batchnorm):
    """Two epochs (20 replays + 2 eager partial batches) give the eager run's weights,
    buffers, losses and accuracies."""
    results = {}
    for graphed in (False, True):
        model, _, step = build(graphed, train_set, batchnorm)
        gen = torch.Generator().manual_seed(7)
        epochs = [engine.train_epoch(step, train_set, BATCH, gen, check_every=5) for _ in range(2)]
        results[graphed] = (model, epochs)
    (eager, e_epochs), (graph, g_epochs) = results[False], results[True]
    assert_same_state(graph, eager)
    for e, g in zip(e_epochs, g_epochs):
        assert g.loss == pytest.approx(e.loss, rel=1e-4)
        assert abs(g.acc - e.acc) <= 2 / len(train_set)


def test_scheduler_lr_change_reaches_the_graph(train_set):
    """ReduceLROnPlateau ``fill_``s the lr tensor; the next replays use the new lr."""
    runs = {}
    for name, graphed, reduce in (
        ("eager", False, True),
        ("graphed", True, True),
        ("graphed_control", True, False),
    ):
        model, opt, step = build(graphed, train_set)
        lr = opt.param_groups[0]["lr"]
        gen = torch.Generator().manual_seed(3)
        engine.train_epoch(step, train_set, BATCH, gen)
        if reduce:
            sched = build_scheduler(PLATEAU, opt, 3, 1).scheduler
            sched.step(1.0)
            sched.step(2.0)  # no improvement, patience 0: lr * 0.1
            assert opt.param_groups[0]["lr"] is lr  # the tensor the graph reads, changed in place
            assert lr.item() == pytest.approx(0.01, rel=1e-6)
        engine.train_epoch(step, train_set, BATCH, gen)
        runs[name] = model
    assert_same_state(runs["graphed"], runs["eager"])
    diff = max(
        float((p - q).abs().max())
        for p, q in zip(runs["graphed"].parameters(), runs["graphed_control"].parameters())
    )
    assert diff > 1e-3  # with lr 0.1 the second epoch goes elsewhere


def _count_syncs(fn) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_no_per_batch_host_syncs(train_set):
    model, _, step = build(True, train_set)
    gen = torch.Generator().manual_seed(0)
    engine.train_epoch(step, train_set, BATCH, gen, check_every=0)  # warm
    n_train = _count_syncs(lambda: engine.train_epoch(step, train_set, BATCH, gen, 0))
    n_val = _count_syncs(lambda: engine.evaluate(model, train_set, batch_size=BATCH))
    assert n_train <= 3, "train_epoch syncs per batch"  # 11 batches
    assert n_val <= 3, "evaluate syncs per batch"  # 11 batches


def test_evaluate_on_cuda_matches_cpu(train_set):
    model, _, _ = build(False, train_set)
    gpu = engine.evaluate(model, train_set, batch_size=100)
    cpu_model = LeNet5()
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    cpu = engine.evaluate(cpu_model, Split(train_set.x.cpu(), train_set.y.cpu()), 100)
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-4)
    assert abs(gpu.acc - cpu.acc) <= 1 / len(train_set)  # argmax near-ties only


# --------------------------------------------------------------------------- full run


def write_idx_dataset(root: Path, n_train: int = 650, n_test: int = 200) -> Path:
    """A learnable FashionMNIST look-alike as IDX files in ``root/FashionMNIST/raw``."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for train, n in ((True, n_train), (False, n_test)):
        rng = np.random.default_rng(0 if train else 1)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 2 : 2 * c + 6, 4:24] = 255
        img_name, lbl_name = data.FILES[train]
        (raw / img_name).write_bytes(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        (raw / lbl_name).write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())
    return root


def test_full_run_on_cuda_with_cuda_graph(tmp_path, monkeypatch):
    """``run.train`` on CUDA with ``trainer.cuda_graph=true`` captures one graph, replays it
    for every full batch, lets ReduceLROnPlateau cut the lr, and logs the losses of the same
    run with ``trainer.cuda_graph=false``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.setenv(data.ENV_ROOT, str(write_idx_dataset(tmp_path / "data")))
    made, replays = [], [0]

    class Spy(engine.GraphedTrainStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

        def run_batch(self, data_, idx):
            replays[0] += data_ is self.data and idx.shape[0] == self.batch_size
            super().run_batch(data_, idx)

    monkeypatch.setattr(engine, "GraphedTrainStep", Spy)
    common = [
        "trainer.device=cuda",
        "trainer.epochs=3",
        "trainer.progress_bar=false",
        "trainer.save_samples=false",
        "trainer.save_curves=false",
        "trainer.save_checkpoint=false",
        "scheduler=plateau",
        "scheduler.patience=0",
        "scheduler.threshold=100",
    ]
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    rows = {}
    for graph in (True, False):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            flag = f"trainer.cuda_graph={str(graph).lower()}"
            cfg = compose(config_name="train", overrides=[*common, flag])
        data.clear_cache()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                summary = run.train(cfg, tmp_path / f"run_{graph}")
        finally:
            data.clear_cache()
        assert not [w for w in caught if "CUDA graph capture failed" in str(w.message)]
        assert summary["status"] == Status.COMPLETED and summary["epochs_run"] == 3
        assert summary["device"].startswith("cuda")
        lines = (tmp_path / f"run_{graph}" / "metrics.csv").read_text().splitlines()
        header = lines[0].split(",")
        rows[graph] = [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]
    assert len(made) == 1  # only the cuda_graph=true run built a graphed step
    assert replays[0] == 3 * (650 // 64)  # every full batch replayed; the last 10 run eagerly
    graphed, eager = rows[True], rows[False]
    assert [r["lr"] for r in graphed] == pytest.approx([0.1, 0.1, 0.01], rel=1e-6)
    for g, e in zip(graphed, eager, strict=True):
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=1e-3, abs=1e-4)
        assert g["val_loss"] == pytest.approx(e["val_loss"], rel=1e-3, abs=1e-4)


def test_augmentation_in_the_graph_draws_anew_every_replay(train_set):
    """A flip+shift transform captured in the graph draws new random numbers each replay
    (CUDA graphs advance the generator's offset), so two replays of one batch differ."""
    torch.manual_seed(0)
    model = LeNet5().to(DEV)
    opt = build_optimizer(SGD, model, Regularizer(), graphable=True)
    transform = augment.Compose([augment.HFlip(0.5), augment.Shift(2)])
    step = engine.GraphedTrainStep(model, opt, train_set, BATCH, transform=transform)
    idx = torch.arange(BATCH, device=DEV)
    losses = []
    for _ in range(2):
        with torch.no_grad():
            saved = [p.clone() for p in model.parameters()]
        step.reset()
        step.run_batch(train_set, idx)
        losses.append(step.loss_sum.item())
        with torch.no_grad():
            for p, q in zip(model.parameters(), saved):
                p.copy_(q)
    assert losses[0] != losses[1]

"""Shared fixtures: tiny learnable FashionMNIST IDX files, Hydra composition, train.py runs.

Generic on purpose (the sweeper and analysis tests reuse them):

* ``tiny_data_factory(n_train=512, n_test=128, seed=0)`` (session) writes a learnable
  dataset into ``<tmp>/FashionMNIST/raw/`` and returns the root to use as
  ``FASHION_MNIST_ROOT``; ``tiny_data_root`` is the default one.
* ``write_idx`` / ``make_malformed_root`` write valid or broken IDX files.
* ``tiny_env`` points ``FASHION_MNIST_ROOT`` of this process at the tiny data.
* ``compose_cfg(*overrides)`` composes ``conf/train.yaml`` in-process.
* ``run_train(*overrides, ...)`` runs ``train.py`` as a subprocess on tiny data and
  returns the ``CompletedProcess`` (with ``.out_dir``, the run or sweep dir).
* ``run_hydra_inprocess(*overrides, run_dir=...)`` runs the real ``train.main`` task through
  Hydra in this process and returns its ``JobReturn`` (``.return_value`` is the objective).
* ``real_data_root`` skips unless ``FASHION_MNIST_ROOT`` is set.
* the default run deselects the tests marked slow, postgres, slurm, dashboard or
  integration; ``--all`` runs them (``sweeper/tests/tiers.py``); ``@pytest.mark.cuda``
  tests are skipped without a CUDA GPU.
* ``slurm_cluster`` (session) / ``slurm_env``: a throw-away single-node SLURM cluster with
  accounting, and ``postgres_url`` (module): a throw-away PostgreSQL server — both from the
  sweeper's own suite (``sweeper/tests/slurm_cluster.py``, ``sweeper/tests/pg_server.py``).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "sweeper" / "tests"))  # the servers' fixture modules
# tiers: the default run and --all; fixtures slurm_cluster, slurm_env, multinode_cluster,
# postgres_url
pytest_plugins = ("tiers", "slurm_cluster", "slurm_multinode", "pg_server")

# One intra-op thread for this process and the train.py subprocesses (inherited), unless the
# caller chose: on a small shared CPU, OpenMP threads competing with other processes slow a
# tiny-data epoch down by 10-50x, and the tiny tensors gain nothing from threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from lenet_lab.data import ENV_ROOT, FILES, IMAGE_MAGIC, LABEL_MAGIC  # noqa: E402 (after the thread cap)

CONF_DIR = REPO_ROOT / "conf"
#: The raw files the real loader reads (lenet_lab.data.FILES), by role.
IDX_NAMES = dict(
    zip(("train_images", "train_labels", "test_images", "test_labels"), FILES[True] + FILES[False])
)


# --------------------------------------------------------------------------- options / markers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_items = [item for item in items if "cuda" in item.keywords]
    if cuda_items:
        import torch

        if not torch.cuda.is_available():
            skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU")
            for item in cuda_items:
                item.add_marker(skip_cuda)


@pytest.fixture(autouse=True)
def _clear_data_cache():
    """Each test starts with empty ``lenet_lab.data`` caches (only if the module is loaded)."""
    mod = sys.modules.get("lenet_lab.data")
    if mod is not None:
        mod.clear_cache()
    yield
    mod = sys.modules.get("lenet_lab.data")
    if mod is not None:
        mod.clear_cache()


# --------------------------------------------------------------------------- IDX files


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write uint8 ``array`` as an IDX file: labels (N,) → magic 0x801, images (N,28,28) → 0x803."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: LABEL_MAGIC, 3: IMAGE_MAGIC}[array.ndim]
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    path.write_bytes(header + array.tobytes())
    return path


def make_tiny_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` learnable 28x28 uint8 images and their labels (balanced, 10 classes).

    Class ``c`` is a bright 10x4 bar at its own place (2 rows x 5 columns grid), jittered by
    up to one pixel, over uniform background noise: a small CNN separates them in a few epochs.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 70, size=(n, 28, 28)).astype(np.int16)
    for i, c in enumerate(labels):
        r = 2 + 13 * (c // 5) + rng.integers(-1, 2)  # rows 1..16 (+10 <= 28)
        col = 1 + 5 * (c % 5) + rng.integers(-1, 2)  # cols 0..22 (+4 <= 28)
        images[i, r : r + 10, col : col + 4] = rng.integers(170, 256, size=(10, 4))
    return images.clip(0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_tiny_dataset(root: Path, n_train: int = 512, n_test: int = 128, seed: int = 0) -> Path:
    """Write the four standard IDX files under ``root/FashionMNIST/raw/``; return ``root``."""
    raw = root / "FashionMNIST" / "raw"
    x_tr, y_tr = make_tiny_arrays(n_train, seed)
    x_te, y_te = make_tiny_arrays(n_test, seed + 1)
    write_idx(raw / IDX_NAMES["train_images"], x_tr)
    write_idx(raw / IDX_NAMES["train_labels"], y_tr)
    write_idx(raw / IDX_NAMES["test_images"], x_te)
    write_idx(raw / IDX_NAMES["test_labels"], y_te)
    return root


MALFORMED_KINDS = ("truncated", "truncated_header", "wrong_magic", "count_mismatch", "missing")


def make_malformed_root(root: Path, kind: str, file: str = "train_images") -> Path:
    """A tiny dataset under ``root`` with one file broken; returns the broken file's path.

    ``kind``: truncated (last bytes cut), truncated_header (only 6 bytes), wrong_magic
    (0x0802), count_mismatch (labels one short; ``file`` must be a labels file), missing.
    """
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"kind must be one of {MALFORMED_KINDS}, got {kind!r}")
    write_tiny_dataset(root, n_train=64, n_test=32)
    path = root / "FashionMNIST" / "raw" / IDX_NAMES[file]
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[:-100])
    elif kind == "truncated_header":
        path.write_bytes(data[:6])
    elif kind == "wrong_magic":
        path.write_bytes(struct.pack(">I", 0x00000802) + data[4:])
    elif kind == "count_mismatch":
        n = struct.unpack(">I", data[4:8])[0]
        path.write_bytes(data[:4] + struct.pack(">I", n - 1) + data[8:-1])
    else:
        path.unlink()
    return path


@pytest.fixture(scope="session")
def tiny_data_factory(tmp_path_factory) -> Callable[..., Path]:
    """``factory(n_train=512, n_test=128, seed=0) -> root`` (cached per arguments)."""
    made: dict[tuple[int, int, int], Path] = {}

    def factory(n_train: int = 512, n_test: int = 128, seed: int = 0) -> Path:
        key = (n_train, n_test, seed)
        if key not in made:
            root = tmp_path_factory.mktemp(f"fmnist_{n_train}_{n_test}_{seed}")
            made[key] = write_tiny_dataset(root, n_train, n_test, seed)
        return made[key]

    return factory


@pytest.fixture(scope="session")
def tiny_data_root(tiny_data_factory) -> Path:
    """Root (holding FashionMNIST/raw/) of the default tiny dataset: 512 train, 128 test."""
    return tiny_data_factory()


@pytest.fixture
def tiny_env(monkeypatch, tiny_data_root) -> Path:
    """``FASHION_MNIST_ROOT`` of this process points at the tiny data for the test."""
    monkeypatch.setenv(ENV_ROOT, str(tiny_data_root))
    return tiny_data_root


@pytest.fixture
def real_data_root() -> Path:
    """The real FashionMNIST root from ``FASHION_MNIST_ROOT`` (skip when unset)."""
    value = os.environ.get(ENV_ROOT)
    if not value:
        pytest.skip("FASHION_MNIST_ROOT is not set")
    root = Path(value)
    if not (root / "FashionMNIST" / "raw").is_dir():
        pytest.skip(f"FASHION_MNIST_ROOT={value} holds no FashionMNIST/raw/")
    return root


# --------------------------------------------------------------------------- Hydra helpers


def compose_config(*overrides: str, config_name: str = "train", return_hydra_config=False):
    """``conf/<config_name>.yaml`` composed in-process with ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        return compose(
            config_name=config_name,
            overrides=list(overrides),
            return_hydra_config=return_hydra_config,
        )


@pytest.fixture
def compose_cfg() -> Callable[..., object]:
    return compose_config


def run_train_subprocess(
    *overrides: str,
    data_root: Path | str | None,
    out_dir: Path,
    multirun: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    script: str = "train.py",
) -> subprocess.CompletedProcess:
    """``python train.py [-m] overrides... hydra.run.dir=<out_dir>`` from the repo root.

    ``data_root`` becomes ``FASHION_MNIST_ROOT`` (None removes it). Multirun uses
    ``hydra.sweep.dir=<out_dir>``. The result has ``.out_dir`` set.
    """
    cmd = [sys.executable, str(REPO_ROOT / script)]
    if multirun:
        cmd += ["-m", *overrides, f"hydra.sweep.dir={out_dir}"]
    else:
        cmd += [*overrides, f"hydra.run.dir={out_dir}"]
    full_env = os.environ.copy()
    full_env.pop(ENV_ROOT, None)
    if data_root is not None:
        full_env[ENV_ROOT] = str(data_root)
    full_env.update(env or {})
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    proc.out_dir = Path(out_dir)
    return proc


@pytest.fixture
def run_train(tmp_path, tiny_data_root) -> Callable[..., subprocess.CompletedProcess]:
    """``run_train(*overrides, data_root=tiny, out_dir=tmp/run, multirun=False, env=None)``."""
    counter = iter(range(1000))

    def run(*overrides: str, data_root="tiny", out_dir=None, **kw):
        root = tiny_data_root if data_root == "tiny" else data_root
        out = Path(out_dir) if out_dir is not None else tmp_path / f"run{next(counter)}"
        return run_train_subprocess(*overrides, data_root=root, out_dir=out, **kw)

    return run


@pytest.fixture
def hydra_inprocess() -> Callable[..., object]:
    return run_hydra_inprocess


def run_hydra_inprocess(*overrides: str, run_dir: Path, task_function=None):
    """Run ``train.main``'s task function through Hydra (config, HydraConfig, output dir) in
    this process; return the ``JobReturn`` (``.return_value`` re-raises a task exception)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if task_function is None:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        import train

        task_function = train.main.__wrapped__  # the function under @hydra.main
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="train"):
        return GlobalHydra.instance().hydra.run(
            config_name="train",
            task_function=task_function,
            overrides=[*overrides, f"hydra.run.dir={run_dir}"],
            with_log_configuration=False,  # keep pytest's log capture
        )

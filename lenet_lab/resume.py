"""A run's whole training state, saved after every epoch and read back to continue the run.

``save`` writes ``state.pt`` into the run's state folder (its output folder, or the folder a
sweep gives the trial: ``lab_optuna.checkpoint_dir()``) atomically: the new state goes to a
temporary file, the current one becomes ``state.prev.pt``, the new one is renamed into place.
It holds the model, the optimizer, every callback's state (scheduler, early stopping, weight
averaging), every RNG (Python, NumPy, torch, CUDA, the batch-order generator), the metrics
rows and the summary so far. ``load`` reads it back: a state of another config is refused
with one line naming the differing keys; an unreadable ``state.pt`` is one warning naming it,
and ``state.prev.pt`` is used instead. ``restore`` puts a state into a built run, so that the
continued run computes what the uninterrupted one would have.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from . import record as rec
from .callbacks import Callback
from .errors import ConfigError
from .run_state import Run

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"  # the state after the last finished epoch
PREVIOUS_FILE = "state.prev.pt"  # the one before it: used when state.pt is unreadable
FORMAT = 2  # of the state file: a state of another format starts the run over (one warning)
OTHER_VERSION = "saved by another version"

#: Config keys that may differ between a run and its continuation: how and where it runs,
#: what it writes, not what it computes.
FREE_KEYS = (
    "trainer.progress_bar",
    "trainer.num_threads",
    "trainer.device",
    "trainer.cuda_graph",
    "trainer.save_samples",
    "trainer.save_curves",
    "trainer.save_checkpoint",
    "trainer.resume",
    "data.root",
    "data.download",
    "data.val_batch_size",
    "logger",
)


class StateError(ConfigError):
    """A saved state that cannot continue this run (another config, or unreadable)."""


def save(state_dir: Path, run: Run, callbacks: Sequence[Callback], generator: Any) -> None:
    """Write the run's state after its last finished epoch (``run.summary[epochs_run]``)."""
    state = {
        "format": FORMAT,
        "epoch": run.summary[rec.EPOCHS_RUN],
        "config": _plain(run.cfg),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "callbacks": {
            key: c.state_dict() for key, c in _keyed(callbacks).items() if c.state_dict()
        },
        "rng": _rng_state(generator),
        "rows": list(run.rows),
        "summary": {k: (str(v) if k == rec.STATUS else v) for k, v in run.summary.items()},
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = state_dir / STATE_FILE, state_dir / (STATE_FILE + ".tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.replace(path, state_dir / PREVIOUS_FILE)
    os.replace(tmp, path)


def load(state_dir: Path, cfg: DictConfig, device: torch.device) -> dict[str, Any] | None:
    """The saved state in ``state_dir`` (None if there is none), checked against ``cfg``."""
    path, previous = state_dir / STATE_FILE, state_dir / PREVIOUS_FILE
    if not path.exists() and not previous.exists():
        return None
    state, error = _read(path, device) if path.exists() else (None, "missing")
    if error == OTHER_VERSION:  # written by another version of the lab: not corrupt
        log.warning(
            "%s was saved by another version of the lab (format %s is read here): this run "
            "starts over from epoch 0",
            path,
            FORMAT,
        )
        return None
    if state is None:
        fallback, why = _read(previous, device) if previous.exists() else (None, "missing")
        if fallback is None:
            raise StateError(
                f"{path} is unreadable ({error}) and {previous.name} is {why}: delete "
                f"{state_dir / 'state*.pt'} to start this run over"
            )
        log.warning(
            "%s is unreadable (%s): continuing from %s (after epoch %d)",
            path,
            error,
            previous.name,
            fallback["epoch"],
        )
        state = fallback
    differ = differing_keys(state["config"], _plain(cfg))
    if differ:
        raise StateError(
            f"{path} was saved by a run with another config ({'; '.join(differ)}): continue "
            "it with the same config, or give this run another folder (hydra.run.dir)"
        )
    return state


def restore(state: dict[str, Any], run: Run) -> None:
    """Put ``state``'s weights, optimizer, metrics rows and summary into a freshly built run
    (before its callbacks start; ``restore_loop`` does the rest after they have)."""
    run.model.load_state_dict(state["model"])  # in place: a captured CUDA graph sees it
    _load_optimizer(run.optimizer, state["optimizer"])
    run.rows[:] = state["rows"]
    run.summary.update({k: v for k, v in state["summary"].items() if k != rec.STATUS})
    run.summary[rec.STATUS] = rec.Status(state["summary"][rec.STATUS])


def restore_loop(
    state: dict[str, Any], run: Run, callbacks: Sequence[Callback], generator: Any
) -> None:
    """Put the callbacks' states and every RNG state back, last thing before the next epoch."""
    keyed = _keyed(callbacks)
    for key, values in state["callbacks"].items():
        if key not in keyed:
            raise StateError(f"the saved state holds a callback {key} that this run lacks")
        keyed[key].load_state_dict(run, values)
    _set_rng_state(state["rng"], generator)


def _keyed(callbacks: Sequence[Callback]) -> dict[str, Callback]:
    """Each callback under its class name (``#2`` for a second of a class): a run and its
    continuation may add callbacks of their own (a sweep's pruning reporter) in between."""
    keyed: dict[str, Callback] = {}
    for c in callbacks:
        name = type(c).__name__
        key, n = name, 1
        while key in keyed:
            n += 1
            key = f"{name}#{n}"
        keyed[key] = c
    return keyed


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """``load_state_dict``, keeping the tensors the optimizer already holds (a captured CUDA
    graph reads those: its state and its tensor learning rate) and copying into them."""
    held = {p: dict(s) for p, s in optimizer.state.items()}
    lrs = [group["lr"] for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for param, values in held.items():
        for key, tensor in values.items():
            if torch.is_tensor(tensor) and key in optimizer.state[param]:
                tensor.copy_(optimizer.state[param][key])
                optimizer.state[param][key] = tensor
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        if torch.is_tensor(lr):
            lr.fill_(float(group["lr"]))
            group["lr"] = lr


def ended(state: dict[str, Any]) -> bool:
    """True when the saved run had already ended (completed, stopped, pruned, diverged)."""
    return rec.Status(state["summary"][rec.STATUS]) in rec.ENDED


def differing_keys(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key (saved → now)`` for each config key that differs, outside ``FREE_KEYS``."""
    a, b = _flat(saved), _flat(now)
    found = []
    for key in sorted(set(a) | set(b)):
        if any(key == k or key.startswith(k + ".") for k in FREE_KEYS):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            found.append(f"{key}: {a.get(key, '<unset>')} -> {b.get(key, '<unset>')}")
    return found


def _read(path: Path, device: torch.device) -> tuple[dict[str, Any] | None, str]:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, not a torch file, ...
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'empty'}"
    if not isinstance(state, dict) or "format" not in state:
        return None, "not a state file"
    if state["format"] != FORMAT:
        return None, OTHER_VERSION
    return state, ""


def _plain(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for each leaf of a nested dict."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
        "batch_order": generator.get_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["batch_order"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])

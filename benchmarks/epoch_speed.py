"""Seconds per epoch: the lab sheet's pipeline against the project's training path.

Same machine, same run, same LeNet-5 (``lenet_lab.model.LeNet5``, same initial weights),
batch 64, SGD lr 0.1 momentum 0.9, 938 optimizer steps per epoch on the 60k training images
(the last batch has 32), then a validation pass over the 10k test images:

* ``sheet``: ``torchvision.datasets.FashionMNIST`` + ``transforms.ToTensor()``,
  ``DataLoader(shuffle=True, batch_size=64, num_workers=0)`` (also ``num_workers=4`` with
  ``--device cuda``), the usual eager loop with ``loss.item()`` per batch.
* ``project``: what ``train.py`` runs on the CPU: ``components.build_components`` (model and
  optimizer from their ``_target_`` configs), ``run.load_data`` (``data.load_split``),
  ``run.make_step`` (``engine.TrainStep``: eager autograd; ``engine.GraphedTrainStep`` on
  CUDA), ``engine.train_epoch`` and ``engine.evaluate``.
* ``project_compile`` (CPU only): the same step with its forward and loss under
  ``torch.compile`` (AOTAutograd compiles the backward too; the optimizer step stays eager,
  fused). Compilation happens in the warm-up epoch (excluded from the timings).

Each path runs in its own child process (so each reports its own peak RSS and GPU memory);
the parent runs one warm-up epoch per child (excluded), then alternates the children epoch
by epoch, each round starting with the next path, so a load change on a shared machine hits
every path alike; besides the medians it reports each path's per-round epoch time over the
project step's of the same round (median over the rounds: the robust ratio under load).
Reported: median s/epoch (train + val), images/s ((60k + 10k) / median), val acc after the
last epoch, peak RSS, peak GPU memory, and ratio = sheet (num_workers=0) s/epoch / project
s/epoch.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/epoch_speed.py --epochs 3
    python benchmarks/epoch_speed.py --device cuda --epochs 5 --json out/epoch_speed_cuda.json

The dataset comes from ``$FASHION_MNIST_ROOT`` (a folder holding ``FashionMNIST/raw/``), or
``--data-root``; it is never downloaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROTO = "@@bench "  # prefix of the protocol lines a child writes on stdout
BATCH, LR, MOMENTUM, SEED = 64, 0.1, 0.9, 42


# --------------------------------------------------------------------------- child side


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(PROTO + json.dumps(obj) + "\n")
    sys.stdout.flush()


def _peak_memory(device) -> dict[str, Any]:
    import torch

    out: dict[str, Any] = {
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    }
    if device.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["peak_gpu_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    return out


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SheetPath:
    """The lab sheet's pipeline: torchvision dataset, ToTensor, DataLoader, eager loop."""

    def __init__(self, args: argparse.Namespace, device, workers: int):
        import torch
        from torch.utils.data import DataLoader, Subset
        from torchvision import datasets, transforms

        from lenet_lab.data import resolve_source
        from lenet_lab.model import LeNet5

        self.torch, self.device = torch, device
        root = str(resolve_source(None, download=False).root)
        tf = transforms.ToTensor()
        train = datasets.FashionMNIST(root, train=True, download=False, transform=tf)
        val = datasets.FashionMNIST(root, train=False, download=False, transform=tf)
        if args.train_size:
            train = Subset(train, range(args.train_size))
        if args.val_size:
            val = Subset(val, range(args.val_size))
        self.n_train, self.n_val = len(train), len(val)
        gen = torch.Generator().manual_seed(SEED)
        self.train_loader = DataLoader(
            train, batch_size=BATCH, shuffle=True, num_workers=workers, generator=gen
        )
        self.val_loader = DataLoader(val, batch_size=BATCH, shuffle=False, num_workers=workers)
        torch.manual_seed(SEED)
        self.model = LeNet5().to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.steps = len(self.train_loader)

    def epoch(self) -> dict[str, float]:
        torch, F = self.torch, self.torch.nn.functional
        model, opt, dev = self.model, self.opt, self.device
        model.train()
        running, correct = 0.0, 0
        for x, y in self.train_loader:
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            running += loss.item() * y.shape[0]
            correct += (out.argmax(1) == y).sum().item()
        t_train = time.perf_counter()
        model.eval()
        val_loss, val_correct = 0.0, 0
        with torch.no_grad():
            for x, y in self.val_loader:
                x, y = x.to(dev), y.to(dev)
                out = model(x)
                val_loss += F.cross_entropy(out, y, reduction="sum").item()
                val_correct += (out.argmax(1) == y).sum().item()
        return {
            "t_train": t_train,
            "loss": running / self.n_train,
            "acc": correct / self.n_train,
            "val_loss": val_loss / self.n_val,
            "val_acc": val_correct / self.n_val,
        }


class ProjectPath:
    """What ``train.py`` runs, through the project's own functions."""

    def __init__(self, args: argparse.Namespace, device, step: str = "eager"):
        import torch
        from hydra import compose, initialize_config_dir

        from lenet_lab import engine, run
        from lenet_lab.components import build_components

        self.torch, self.engine, self.device = torch, engine, device
        overrides = [
            f"trainer.device={device.type}",
            "trainer.progress_bar=false",
            f"seed={SEED}",
            f"data.batch_size={BATCH}",
            "optimizer=sgd",
            f"optimizer.lr={LR}",
            f"optimizer.momentum={MOMENTUM}",
        ]
        if args.train_size:
            overrides.append(f"data.train_size={args.train_size}")
        if args.val_size:
            overrides.append(f"data.val_size={args.val_size}")
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
        self.generator = run.seed_everything(int(cfg.seed))
        self.graphable = device.type == "cuda" and bool(cfg.trainer.cuda_graph)
        parts = build_components(cfg, device, self.graphable)  # as run.train, in its order
        self.train_set, self.val_set = run.load_data(cfg, device)
        self.n_train, self.n_val = len(self.train_set), len(self.val_set)
        self.model = parts.model
        self.step = run.make_step(parts, self.train_set, BATCH, graphable=self.graphable)
        if step == "compile":
            self.step = compiled_step(self.step)
        self.step_kind = type(self.step).__name__
        self.check_every = 1 if device.type == "cpu" else 100  # as run.train does
        self.val_batch = int(cfg.data.val_batch_size)
        self.steps = math.ceil(self.n_train / BATCH)

    def epoch(self) -> dict[str, float]:
        engine = self.engine
        tr = engine.train_epoch(self.step, self.train_set, BATCH, self.generator, self.check_every)
        t_train = time.perf_counter()
        va = engine.evaluate(self.model, self.val_set, self.val_batch)
        return {
            "t_train": t_train,
            "loss": tr.loss,
            "acc": tr.acc,
            "val_loss": va.loss,
            "val_acc": va.acc,
        }


def compiled_step(step: Any) -> Any:
    """``step`` (an eager ``engine.TrainStep``) with its forward and loss under
    ``torch.compile``; backward (compiled by AOTAutograd) and optimizer step as before."""
    import torch

    def logits_and_loss(x: Any, y: Any) -> tuple[Any, Any]:
        logits = step.model(x)
        return logits, step.criterion(logits, y)

    compiled = torch.compile(logits_and_loss)

    def forward_backward(x: Any, y: Any) -> None:
        logits, loss = compiled(x, y)
        loss.backward()
        step.optimizer.step()
        step.loss_sum.add_(loss.detach(), alpha=y.shape[0])
        step.correct.add_((logits.detach().argmax(1) == y).sum())

    step._forward_backward = forward_backward
    return step


def child_main(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    if args.child.startswith("project"):
        kind = {"project": "eager", "project_compile": "compile"}
        path: Any = ProjectPath(args, device, step=kind[args.child])
    else:
        path = SheetPath(args, device, workers=int(args.child.removeprefix("sheet_w")))
    _sync(device)
    _emit(
        {
            "event": "ready",
            "setup_s": time.perf_counter() - t0,
            "n_train": path.n_train,
            "n_val": path.n_val,
            "steps_per_epoch": path.steps,
            "threads": torch.get_num_threads(),
            "step": getattr(path, "step_kind", "eager loop"),
        }
    )
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        c0, t0 = time.process_time(), time.perf_counter()
        res = path.epoch()
        _sync(device)
        t1 = time.perf_counter()
        res.update(epoch_s=t1 - t0, train_s=res.pop("t_train") - t0, cpu_s=time.process_time() - c0)
        res["val_s"] = res["epoch_s"] - res["train_s"]
        _emit({"event": "epoch", **res})
    _emit({"event": "done", **_peak_memory(device)})


# --------------------------------------------------------------------------- parent side


class Child:
    def __init__(self, name: str, args: argparse.Namespace):
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            name,
            "--device",
            args.device,
        ]
        for opt in ("threads", "train_size", "val_size"):
            if getattr(args, opt):
                cmd += [f"--{opt.replace('_', '-')}", str(getattr(args, opt))]
        self.name = name
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, bufsize=1
        )
        self.info = self._read("ready")
        self.epochs: list[dict[str, float]] = []

    def _read(self, event: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(PROTO):
                msg = json.loads(line[len(PROTO) :])
                if msg["event"] != event:
                    raise RuntimeError(f"{self.name}: expected {event}, got {msg}")
                return msg
        raise RuntimeError(f"{self.name} exited (code {self.proc.wait()}) before {event!r}")

    def epoch(self) -> dict[str, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        return self._read("epoch")

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("done\n")
        self.proc.stdin.close()
        done = self._read("done")
        self.proc.wait()
        return done


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def summarize(name: str, child: Child, done: dict[str, Any]) -> dict[str, Any]:
    times = [e["epoch_s"] for e in child.epochs]
    med = statistics.median(times)
    n_img = child.info["n_train"] + child.info["n_val"]
    last = child.epochs[-1]
    return {
        "path": name,
        "step": child.info["step"],
        "setup_s": child.info["setup_s"],
        "threads": child.info["threads"],
        "steps_per_epoch": child.info["steps_per_epoch"],
        "n_train": child.info["n_train"],
        "n_val": child.info["n_val"],
        "epoch_s": times,
        "s_per_epoch": med,
        "min_s": min(times),
        "max_s": max(times),
        "train_s_median": statistics.median(e["train_s"] for e in child.epochs),
        "val_s_median": statistics.median(e["val_s"] for e in child.epochs),
        "cpu_s_median": statistics.median(e["cpu_s"] for e in child.epochs),
        "images_per_s": n_img / med,
        "train_loss": last["loss"],
        "train_acc": last["acc"],
        "val_loss": last["val_loss"],
        "val_acc": last["val_acc"],
        "val_acc_per_epoch": [e["val_acc"] for e in child.epochs],
        **{k: v for k, v in done.items() if k != "event"},
    }


def print_table(rows: list[dict[str, Any]], device: str) -> None:
    head = (
        f"{'path':<22} {'s/epoch':>8} {'(min-max)':>13} {'img/s':>8} {'val acc':>8} "
        f"{'peak RSS':>9} {'peak GPU':>9} {'steps':>6}"
    )
    print(
        f"\nLeNet-5, FashionMNIST, batch {BATCH}, SGD lr {LR} momentum {MOMENTUM}, {device}; "
        "s/epoch = train + val, median over the timed epochs"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        gpu = f"{r['peak_gpu_mb']:7.0f}MB" if "peak_gpu_mb" in r else f"{'-':>9}"
        print(
            f"{r['path']:<22} {r['s_per_epoch']:8.3f} {r['min_s']:6.3f}-{r['max_s']:<6.3f} "
            f"{r['images_per_s']:8.0f} {r['val_acc']:8.4f} {r['peak_rss_mb']:7.0f}MB "
            f"{gpu} {r['steps_per_epoch']:6d}"
        )


def parent_main(args: argparse.Namespace) -> int:
    import torch

    if args.data_root:
        os.environ["FASHION_MNIST_ROOT"] = str(Path(args.data_root).resolve())
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA GPU is available", file=sys.stderr)
        return 2
    names = ["sheet_w0", "project"]
    names += ["sheet_w4"] if args.device == "cuda" else ["project_compile"]
    load_before = os.getloadavg()
    children = {}
    for name in names:  # setup one at a time: each child's setup is timed alone
        children[name] = Child(name, args)
        print(f"{name}: ready in {children[name].info['setup_s']:.1f}s", flush=True)
    for name, ch in children.items():
        e = ch.epoch()
        print(f"{name}: warm-up epoch {e['epoch_s']:.3f}s (excluded)", flush=True)
    order = list(children)
    for i in range(args.epochs):
        shift = i % len(order)  # each round starts with another path: no position bias
        for name in order[shift:] + order[:shift]:
            ch = children[name]
            e = ch.epoch()
            ch.epochs.append(e)
            print(
                f"{name}: epoch {i + 1}/{args.epochs} {e['epoch_s']:.3f}s "
                f"(train {e['train_s']:.3f} val {e['val_s']:.3f}) val_acc {e['val_acc']:.4f}",
                flush=True,
            )
    rows = [summarize(name, ch, ch.finish()) for name, ch in children.items()]
    by = {r["path"]: r for r in rows}
    steps = {r["steps_per_epoch"] for r in rows}
    if len(steps) != 1:
        raise SystemExit(f"paths took different numbers of optimizer steps: {steps}")
    print_table(rows, args.device)
    base, proj = by["sheet_w0"]["s_per_epoch"], by["project"]["s_per_epoch"]
    ratio = base / proj
    print(f"\nratio (sheet, num_workers=0) / project = {base:.3f} / {proj:.3f} = {ratio:.2f}x")
    if "sheet_w4" in by:
        w4 = by["sheet_w4"]["s_per_epoch"]
        print(f"ratio (sheet, num_workers=4) / project = {w4:.3f} / {proj:.3f} = {w4 / proj:.2f}x")
    eager = by["project"]["s_per_epoch"]
    paired = {  # per round: this path's epoch over the eager step's of the same round
        name: statistics.median(
            e["epoch_s"] / p["epoch_s"]
            for e, p in zip(ch.epochs, children["project"].epochs, strict=True)
        )
        for name, ch in children.items()
    }
    print(
        "per-round ratios to the eager project step (median): "
        + ", ".join(f"{name} {r:.2f}x" for name, r in paired.items())
    )
    for other in ("project_compile",):
        if other in by:
            t = by[other]["s_per_epoch"]
            print(
                f"ratio project (eager autograd) / {other} = {eager:.3f} / {t:.3f} = "
                f"{eager / t:.2f}x"
            )
    result = {
        "baseline_s_per_epoch": base,
        "project_s_per_epoch": proj,
        "ratio": ratio,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else _cpu_name(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "epochs_timed": args.epochs,
        "warmup_epochs": 1,
        "batch_size": BATCH,
        "optimizer": f"SGD lr={LR} momentum={MOMENTUM}",
        "steps_per_epoch": steps.pop(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "paths": by,
    }
    for other in ("project_compile",):
        if other in by:
            result[f"{other}_s_per_epoch"] = by[other]["s_per_epoch"]
            result[f"ratio_eager_over_{other.removeprefix('project_')}"] = (
                eager / by[other]["s_per_epoch"]
            )
    result["epoch_time_over_project_paired"] = paired
    if "sheet_w4" in by:
        result["baseline_w4_s_per_epoch"] = by["sheet_w4"]["s_per_epoch"]
        result["ratio_w4"] = by["sheet_w4"]["s_per_epoch"] / proj
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (median), after 1 warm-up")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument(
        "--data-root",
        default=None,
        help="folder holding FashionMNIST/raw/ (default: $FASHION_MNIST_ROOT, else data/)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads in every path (default: torch's default, one per core)",
    )
    p.add_argument("--train-size", type=int, default=0, help="first N training images (0 = all)")
    p.add_argument("--val-size", type=int, default=0, help="first N test images (0 = all)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    sys.path.insert(0, str(ROOT))
    if args.child:
        child_main(args)
        return 0
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())

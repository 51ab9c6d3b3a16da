"""Per-trial overhead inside one process: everything a trial does except its epochs.

Runs ``lenet_lab.run.train`` with ``trainer.epochs=0`` several times in one process, each
time composing the config with Hydra's compose API (as a sweep trial does), and times every
call: config compose, validation, data from the per-process cache, model/optimizer build,
scoring the untrained model on the validation set (what ``epochs=0`` does), and the run's
artifacts (summary.json, metrics.csv). Trials run with the sweeps' trainer settings
(``conf/hparams_search``: no progress bar, no samples.png); two more calls with
``trainer.save_samples=true`` show what samples.png adds. The first call also reads the
dataset from disk; the later ones must not (checked: the IDX files are parsed once per
process).

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/trial_overhead.py
    python benchmarks/trial_overhead.py --device cuda --json out/trial_overhead.json
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import platform
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3


def timed_calls(
    plan: list[list[str]], device: str, profile_call: int | None
) -> tuple[list[dict[str, Any]], int, str]:
    """``run.train`` once per override list of ``plan`` in this process, each composed by
    Hydra's compose API: per call its times and IDX image-file parses; the parses in all;
    the cProfile text of call ``profile_call`` (top 15, cumulative)."""
    from torchvision.datasets import mnist

    reads: list[str] = []  # every parse of an IDX image file
    original = mnist.read_image_file

    def counting_read_image_file(path: str) -> Any:
        reads.append(path)
        return original(path)

    mnist.read_image_file = counting_read_image_file
    try:
        calls, profile_text = _run_plan(plan, device, profile_call, reads)
    finally:
        mnist.read_image_file = original
    return calls, len(reads), profile_text


def _run_plan(
    plan: list[list[str]], device: str, profile_call: int | None, reads: list[str]
) -> tuple[list[dict[str, Any]], str]:
    import torch
    from hydra import compose, initialize_config_dir

    from lenet_lab import run

    calls: list[dict[str, Any]] = []
    profile_text = ""
    with (
        tempfile.TemporaryDirectory() as tmp,
        initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"),
    ):
        for i, overrides in enumerate(plan):
            prof = cProfile.Profile() if i == profile_call else None
            n_reads, t0 = len(reads), time.perf_counter()
            if prof:
                prof.enable()
            cfg = compose(config_name="train", overrides=overrides)
            t1 = time.perf_counter()
            summary = run.train(cfg, Path(tmp) / f"trial_{i}")
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t2 = time.perf_counter()
            if prof:
                prof.disable()
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(15)
                profile_text = buf.getvalue()
            samples = bool(cfg.trainer.save_samples)
            calls.append(
                {
                    "total_s": t2 - t0,
                    "compose_s": t1 - t0,
                    "train_s": t2 - t1,
                    "disk_reads": len(reads) - n_reads,
                    "status": summary["status"],
                    "save_samples": samples,
                }
            )
            print(
                f"trial {i + 1}: {t2 - t0:.3f}s (compose {t1 - t0:.3f}s, run.train "
                f"{t2 - t1:.3f}s, IDX files parsed: {len(reads) - n_reads}"
                f"{', with samples.png' if samples else ''})",
                flush=True,
            )
    return calls, profile_text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="trainer.device (default cpu)")
    p.add_argument("--trials", type=int, default=4, help="calls in this process (>= 2)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--profile", action="store_true", help="cProfile the last call (top 15)")
    p.add_argument("overrides", nargs="*", help="extra config overrides, e.g. data=...")
    args = p.parse_args(argv)
    if args.trials < 2:
        p.error("--trials must be >= 2")
    sys.path.insert(0, str(ROOT))
    t_import = time.perf_counter()
    import torch

    import lenet_lab.run  # noqa: F401  (timed: the imports a trial process pays once)

    t_import = time.perf_counter() - t_import
    overrides = [
        f"trainer.device={args.device}",
        "trainer.epochs=0",
        "trainer.progress_bar=false",
        "trainer.save_samples=false",
        *args.overrides,
    ]
    plan = [overrides] * args.trials + [[*overrides, "trainer.save_samples=true"]] * 2
    profiled = args.trials - 1 if args.profile else None
    every, n_reads, profile_text = timed_calls(plan, args.device, profiled)
    calls, extra = every[: args.trials], every[args.trials :]
    samples = [c["total_s"] for c in extra]
    later = [c["total_s"] for c in calls[1:]]
    second = calls[1]["total_s"]
    reread = sum(c["disk_reads"] for c in calls[1:] + extra)
    print(
        f"\nper-trial overhead (2nd call): {second:.3f}s; median of calls 2..{len(calls)}: "
        f"{statistics.median(later):.3f}s; target <= {TARGET_S}s: "
        f"{'OK' if second <= TARGET_S else 'MISSED'}"
    )
    print(f"with trainer.save_samples=true (not in sweeps): {min(samples):.3f}s per call")
    print(
        f"dataset read from disk once per process: {'yes' if reread == 0 else 'NO'} "
        f"({n_reads} image-file parses in {len(calls)} calls); imports took {t_import:.1f}s"
    )
    if profile_text:
        print(profile_text)
    result = {
        "second_call_s": second,
        "median_later_s": statistics.median(later),
        "first_call_s": calls[0]["total_s"],
        "target_s": TARGET_S,
        "ok": second <= TARGET_S,
        "dataset_reads_after_first_call": reread,
        "calls": calls,
        "device": args.device,
        "with_save_samples_s": min(samples),
        "calls_with_save_samples": extra,
        "overrides": overrides,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0 if reread == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""What spreading a sweep over nodes costs: 1 node x 3 slots against 3 nodes x 1 slot.

The same toy sweep (``sweeper/tests/toy_app/sphere.py``, each trial ``sleep`` seconds of
work, ``n_jobs=3``, ``hydra/launcher=submitit_slurm``, the study in PostgreSQL on the host's
link address) on the tests' multi-node SLURM cluster (``sweeper/tests/slurm_multinode.py``:
each node's slurmd in its own network namespace on one machine), started twice: one node of 3
CPUs, then three nodes of 1 CPU. Per layout: slot utilisation (trial-seconds / (3 x span),
from the study's timestamps: ``analysis.timeline.utilisation``), useful utilisation
(work-seconds / (3 x span)), the per-trial overhead (a trial's ask-to-tell time minus its
work: submission, scheduling, the job's Python start, storage round trips) and the command's
wall time. Root only (namespaces, SLURM daemons). Writes a JSON result.

    .venv/bin/python benchmarks/multinode_cost.py --trials 12 --work 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "sweeper" / "tests"
sys.path[:0] = [str(ROOT), str(TESTS)]
import optuna  # noqa: E402

from analysis.timeline import utilisation  # noqa: E402  (the report's definition)
from pg_server import throwaway_postgres  # noqa: E402
from slurm_multinode import MultiNodeCluster, missing_multinode_requirements  # noqa: E402

SLOTS = 3


def run(layout: str, n_nodes: int, cpus: int, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="lab-slurm-mn-", dir="/tmp"))
    cluster = MultiNodeCluster(root, n_nodes=n_nodes, cpus=cpus)
    try:
        cluster.start()
        net = cluster.host_addr.rsplit(".", 1)[0] + ".0/24"
        with throwaway_postgres(listen=cluster.host_addr, allow=net) as pg:
            cmd = [
                sys.executable,
                str(TESTS / "toy_app" / "sphere.py"),
                "-m",
                f"hydra.sweep.dir={root / 'out'}",
                f"hydra.sweeper.storage={pg.url}",
                "hydra.sweeper.study_name=cost",
                f"hydra.sweeper.n_trials={args.trials}",
                f"hydra.sweeper.n_jobs={SLOTS}",
                "hydra.sweeper.heartbeat_interval=2",
                "hydra.sweeper.grace_period=20",
                "hydra/launcher=submitit_slurm",
                "hydra.launcher.partition=lab",
                "hydra.launcher.cpus_per_task=1",
                "hydra.launcher.mem_gb=1",
                "hydra.launcher.timeout_min=10",
                f"sleep={args.work}",
            ]
            print(f"[{layout}] {n_nodes} node(s) x {cpus} CPU(s)", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, env=cluster.env, cwd=root, capture_output=True, text=True)
            command_s = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"[{layout}] sweep failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
            trials = optuna.load_study(study_name="cost", storage=pg.url).trials
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)
    spans = [
        (t.datetime_start.timestamp(), t.datetime_complete.timestamp())
        for t in trials
        if t.datetime_complete
    ]
    per_trial = [end - start for start, end in spans]
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    hosts = sorted({t.user_attrs.get("host", "?").split(":")[0] for t in trials})
    result = {
        "layout": layout,
        "nodes": n_nodes,
        "cpus_per_node": cpus,
        "slots": SLOTS,
        "trials": len(trials),
        "states": sorted({t.state.name for t in trials}),
        "hosts": hosts,
        "work_s_per_trial": args.work,
        "span_s": round(span, 1),
        "command_s": round(command_s, 1),
        "slot_utilisation": round(utilisation(spans, SLOTS), 3),
        "useful_utilisation": round(len(spans) * args.work / (SLOTS * span), 3),
        "trial_s_mean": round(statistics.mean(per_trial), 2),
        "trial_s_median": round(statistics.median(per_trial), 2),
        "overhead_s_per_trial": round(statistics.mean(per_trial) - args.work, 2),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--work", type=float, default=3.0, help="seconds of work per trial")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "multinode_cost.json"
    )
    args = parser.parse_args()
    reason = missing_multinode_requirements()
    if reason:
        raise SystemExit(reason)
    one = run("1x3", 1, SLOTS, args)
    three = run("3x1", SLOTS, 1, args)
    result = {
        "1_node_x_3_slots": one,
        "3_nodes_x_1_slot": three,
        "overhead_delta_s": round(three["overhead_s_per_trial"] - one["overhead_s_per_trial"], 2),
        "machine": platform.platform(),
        "note": "all nodes are network namespaces of one machine: the link is a local bridge, "
        "so this measures SLURM's and the sweeper's cost of spreading, not a real network's",
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

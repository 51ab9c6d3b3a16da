"""The lab's phase 1 on a SLURM cluster of three nodes, each behind its own network address
(``sweeper/tests/slurm_multinode.py``): its trials spread over the nodes and report to a
PostgreSQL study on the host's address on the link (not on loopback), or to a journal file."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import REPO_ROOT
from lab_optuna._storage.connect import make_storage
from pg_server import throwaway_postgres
from slurm_multinode import MultiNodeCluster

pytestmark = pytest.mark.multinode


@pytest.mark.parametrize("storage", ["postgres", "journal"])
def test_phase1_spreads_over_the_nodes(
    multinode_cluster: MultiNodeCluster, tmp_path: Path, tiny_data_root: Path, storage: str
):
    """PostgreSQL on the host's link address (the only one a node reaches it at), or a journal
    file on the filesystem every node shares."""
    c = multinode_cluster
    subnet = c.host_addr.rsplit(".", 1)[0] + ".0/24"
    with contextlib.ExitStack() as stack:
        if storage == "postgres":
            url = stack.enter_context(throwaway_postgres(listen=c.host_addr, allow=subnet)).url
            assert c.host_addr in url and "127.0.0.1" not in url
        else:
            url = f"journal:///{tmp_path / 'phase1.journal'}"
        cmd = [
            sys.executable,
            str(REPO_ROOT / "train.py"),
            "-m",
            "hparams_search=phase1_flat",
            "hydra/launcher=slurm",
            f"hydra.launcher.partition={c.partition}",
            "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=5",
            f"hydra.sweep.dir={tmp_path / 'phase1'}",
            f"hydra.sweeper.storage={url}",
            "hydra.sweeper.study_name=phase1_nodes",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.n_jobs=3",
            "trainer.epochs=2",
            "data.holdout_size=128",
        ]
        env = {**c.env, "FASHION_MNIST_ROOT": str(tiny_data_root)}
        try:
            proc = subprocess.run(
                cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
            )
        finally:
            c.reset()
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:] + c.log_tail()
        found = optuna.load_study(study_name="phase1_nodes", storage=make_storage(url)).trials
    assert len(found) == 3
    assert {t.state for t in found} <= {TrialState.COMPLETE, TrialState.PRUNED}
    nodes = {t.user_attrs["host"].split(":")[0] for t in found}
    assert nodes <= set(c.nodes) and len(nodes) >= 2, nodes  # three jobs, three idle nodes
    for t in found:  # the lab's record is in each trial's own folder
        assert (tmp_path / "phase1" / f"trial_{t.number}" / "summary.json").is_file()

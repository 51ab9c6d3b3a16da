"""Tests for the analysis package on synthetic multirun trees (no training involved)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from analysis import (
    FIXED_COLUMNS,
    AnalysisError,
    best_command,
    best_index,
    comparable_columns,
    compare_by,
    load_epochs,
    load_runs,
    load_sweeps,
    write_report,
)
from analysis.__main__ import main
from analysis.compare import early_stopping_summary, finished, lr_varying_keys, stats_summary
from analysis.job_overrides import command_line, command_overrides, override_key, parse_overrides
from analysis.report import build_report
from lab_optuna.overrides import parse_override
from lenet_lab.record import Status

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STAT_COLS = [
    f"{p}_{s}" for p in ("param", "feat_in", "feat_out") for s in ("min", "max", "mean", "std")
]

# --------------------------------------------------------------------------- tree builders


def metrics_rows(
    epochs: int,
    final_acc: float,
    lr0: float = 0.1,
    decay: bool = False,
    diverge: bool = False,
    gap: float = 0.02,
) -> list[dict[str, float]]:
    """Plausible per-epoch metrics rising to ``final_acc`` at the last epoch."""
    rows = []
    for e in range(1, epochs + 1):
        val_acc = final_acc - 0.3 * (epochs - e) / epochs
        loss = math.nan if diverge and e > 1 else 2.0 / e
        row = {
            "epoch": e,
            "train_loss": loss,
            "train_acc": min(1.0, val_acc + gap),
            "val_loss": loss * 1.1,
            "val_acc": val_acc,
            "lr": lr0 * (0.5 ** (e - 1)) if decay else lr0,
            "seconds": 1.5,
        }
        row.update({c: 0.01 * e + i for i, c in enumerate(STAT_COLS)})
        rows.append(row)
    return rows


def write_job(
    sweep: Path,
    name: str,
    overrides: list[str],
    *,
    config: dict[str, Any] | None = None,
    metrics: list[dict[str, float]] | str | None = None,
    summary: dict[str, Any] | None = None,
    trial: dict[str, Any] | None = None,
) -> Path:
    """Create one Hydra job dir; ``metrics='empty'`` writes a zero-byte metrics.csv."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config or {}))
    if metrics == "empty":
        (job / "metrics.csv").write_text("")
    elif metrics is not None:
        pd.DataFrame(metrics).to_csv(job / "metrics.csv", index=False)
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    if trial is not None:
        (job / "trial.json").write_text(json.dumps(trial))
    return job


def make_summary(
    rows: list[dict[str, float]], status: str, max_epochs: int, trial: dict[str, Any] | None = None
) -> dict[str, Any]:
    """summary.json consistent with the metrics rows."""
    accs = [r["val_acc"] for r in rows]
    best = max(range(len(accs)), key=accs.__getitem__) if accs else None
    return {
        "status": status,
        "best_val_acc": accs[best] if accs else 0.0,
        "best_epoch": best + 1 if accs else None,
        "epochs_run": len(rows),
        "max_epochs": max_epochs,
        "stopped_early": status == "early_stopped",
        "stop_epoch": len(rows) if status == "early_stopped" else None,
        "n_params": 61706,
        "wall_time_s": 1.5 * len(rows),
        "device": "cpu",
        "final_train_acc": rows[-1]["train_acc"] if rows else None,
        "final_val_acc": rows[-1]["val_acc"] if rows else None,
        "reason": "loss is nan" if status == "diverged" else None,
        "trial": trial,
        "config": {},
    }


def job_config(
    regularizer: str, scheduler: str, epochs: int = 6, optimizer: str = "sgd"
) -> dict[str, Any]:
    return {
        "trainer": {"epochs": epochs, "batch_size": 128},
        "optimizer": {"name": optimizer, "lr": 0.1},
        "regularizer": {"name": regularizer},
        "normalization": {"name": "batchnorm"},
        "scheduler": {"name": scheduler},
        "early_stopping": {"name": "patience", "patience": 2},
    }


# (regularizer, scheduler, final val acc, epochs run, status); budget is 6 epochs
GRID = [
    ("none", "none", 0.80, 6, "completed"),
    ("none", "cosine", 0.82, 4, "early_stopped"),
    ("l2", "none", 0.85, 6, "completed"),
    ("l2", "cosine", 0.91, 6, "completed"),
    ("l1", "none", 0.78, 3, "early_stopped"),
    ("l1", "cosine", 0.83, 6, "completed"),
    ("dropout", "none", 0.86, 5, "early_stopped"),
    ("dropout", "cosine", 0.88, 6, "completed"),
]


def build_grid(root: Path) -> Path:
    """A plain Hydra grid with 8 good jobs, 3 broken ones and stray entries."""
    sweep = root / "grid"
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {
                        "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
                    },
                    "overrides": {
                        "task": ["regularizer=none,l2,l1,dropout", "scheduler=none,cosine"]
                    },
                }
            }
        )
    )
    for i, (reg, sched, acc, n, status) in enumerate(GRID):
        rows = metrics_rows(n, acc, decay=sched == "cosine", gap=0.01 * (i + 1))
        write_job(
            sweep,
            str(i),
            [f"regularizer={reg}", f"scheduler={sched}"],
            config=job_config(reg, sched),
            metrics=rows,
            summary=make_summary(rows, status, 6),
        )
    # killed while running: metrics for 3 epochs, no summary.json
    write_job(
        sweep,
        "8",
        ["regularizer=l2", "scheduler=none"],
        config=job_config("l2", "none"),
        metrics=metrics_rows(3, 0.99),
    )
    # diverged: NaN losses
    rows = metrics_rows(4, 0.10, diverge=True)
    write_job(
        sweep,
        "9",
        ["regularizer=none", "scheduler=none", "optimizer.lr=5.0"],
        config=job_config("none", "none"),
        metrics=rows,
        summary=make_summary(rows, "diverged", 6),
    )
    # failed before the first epoch: empty metrics.csv
    write_job(
        sweep,
        "10",
        ["regularizer=dropout", "scheduler=cosine"],
        config=job_config("dropout", "cosine"),
        metrics="empty",
        summary={
            **make_summary([], "failed", 6),
            "best_val_acc": None,
            "reason": "CUDA out of memory",
        },
    )
    (sweep / "notes.txt").write_text("not a job")
    (sweep / "old_plots").mkdir()
    (sweep / "old_plots" / "x.txt").write_text("not a job either")
    return sweep


def build_optuna(
    root: Path,
    study: str,
    accs: list[float | None],
    *,
    pinned: dict[str, Any] | None = None,
    importances: bool = True,
) -> Path:
    """An Optuna sweep: trial_i dirs; ``None`` acc = killed (study says PRUNED); plus one
    study-only FAIL trial without a job dir."""
    sweep = root / study
    sweep.mkdir(parents=True)
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump(
            {
                "hydra": {
                    "sweeper": {
                        "_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",  # noqa: E501
                        "direction": "maximize",
                        "study_name": study,
                    }
                }
            }
        )
    )
    records = []
    optimizers = ["adam", "sgd"]
    for i, acc in enumerate(accs):
        opt, lr = optimizers[i % 2], 10 ** (-1 - 0.5 * i)
        ov = [f"optimizer={opt}", f"optimizer.lr={lr}"]
        if pinned:
            ov.insert(0, f"regularizer={['l2', 'dropout'][i % 2]}")
        info = {"number": i, "study": study, "params": {"optimizer": opt, "optimizer.lr": lr}}
        rows = metrics_rows(5, acc if acc is not None else 0.5, lr0=lr)
        write_job(
            sweep,
            f"trial_{i}",
            ov,
            config=job_config("none", "none", 5, opt),
            metrics=rows if acc is not None else rows[:2],
            trial=info,
            summary=make_summary(rows, "completed", 5, info) if acc is not None else None,
        )
        records.append(
            {
                "number": i,
                "state": "COMPLETE" if acc is not None else "PRUNED",
                "value": acc,
                "params_optimizer": opt,
                "params_optimizer.lr": lr,
            }
        )
    records.append(
        {
            "number": len(accs),
            "state": "FAIL",
            "value": None,
            "params_optimizer": "sgd",
            "params_optimizer.lr": 0.5,
            "user_attrs_fail_reason": "sampler error",
        }
    )
    pd.DataFrame(records).to_csv(sweep / "study_trials.csv", index=False)
    best = max((a, i) for i, a in enumerate(accs) if a is not None)
    (sweep / "optimization_results.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "optuna",
                "study_name": study,
                "best_value": best[0],
                "best_trial": best[1],
                "best_params": {
                    "optimizer": optimizers[best[1] % 2],
                    "optimizer.lr": 10 ** (-1 - 0.5 * best[1]),
                },
            }
        )
    )
    if importances:
        pd.DataFrame({"param": ["optimizer.lr", "optimizer"], "importance": [0.7, 0.3]}).to_csv(
            sweep / "importances.csv", index=False
        )
    if pinned:
        (sweep / "pinned.yaml").write_text(yaml.safe_dump(pinned))
    return sweep


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multirun")
    return {
        "grid": build_grid(root),
        "phase1": build_optuna(root, "phase1", [0.84, 0.89, 0.87, 0.90, None]),
        "phase2": build_optuna(
            root,
            "phase2",
            [0.905, 0.93, 0.91],
            pinned={"optimizer": "adam", "optimizer.lr": 0.0012},
            importances=False,
        ),
        "empty": (root / "empty").mkdir() or root / "empty",
    }


@pytest.fixture(scope="module")
def grid_runs(trees: dict[str, Path]):
    return load_sweeps(trees["grid"])


@pytest.fixture(scope="module")
def report(trees: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("report")
    return write_report([trees["phase1"], trees["phase2"], trees["grid"]], out=out, top=5)


# --------------------------------------------------------------------------- overrides


def test_override_parsing_is_hydras() -> None:
    texts = [
        "++optimizer.lr=1e-3",
        "data.batch_size=64",
        "trainer.cuda_graph=on",
        "trainer.progress_bar=false",
        "model.sizes=[1,2]",
        "+regularizer=l2",
        "name='a b'",
        "hydra.job.chdir=true",
        "~scheduler",
    ]
    params, internal = parse_overrides(texts)
    assert params == {
        "optimizer.lr": 0.001,
        "data.batch_size": 64,
        "trainer.cuda_graph": "on",
        "trainer.progress_bar": False,
        "model.sizes": "[1,2]",
        "regularizer": "l2",
        "name": "a b",
    }
    assert isinstance(params["data.batch_size"], int)
    assert internal == {"hydra.job.chdir": True}
    # the same typing as the sweeper's parser (the one the lead's sweeper and validation use)
    for text in texts[:4]:
        key, value = parse_override(text)
        assert params[key] == value and type(params[key]) is type(value)
    assert override_key("++optimizer.lr=1e-3") == "optimizer.lr"
    cmd = command_line(
        ["optimizer.lr=1e-3", "hydra.job.chdir=true"],
        extra={"optimizer": "adam", "name": "a b", "flag": "on", "x": 0.5},
    )
    assert cmd.startswith("python train.py optimizer.lr=1e-3 optimizer=adam ")
    # what the shell hands Hydra reads back as the same values
    assert parse_overrides(command_overrides(cmd))[0] == {
        "optimizer.lr": 0.001,
        "optimizer": "adam",
        "name": "a b",
        "flag": "on",
        "x": 0.5,
    }


# --------------------------------------------------------------------------- loading


def test_grid_rows_columns_and_statuses(grid_runs) -> None:
    df = grid_runs.trials
    assert list(df.columns[: len(FIXED_COLUMNS)]) == FIXED_COLUMNS
    assert len(df) == 11  # stray file and marker-less dir ignored
    assert list(df["job"]) == [str(i) for i in range(11)]  # natural order, 10 after 9
    for col in (
        "optimizer",
        "regularizer",
        "normalization",
        "scheduler",
        "early_stopping",
        "optimizer.lr",
    ):
        assert col in df.columns
    status = dict(zip(df["job"], df["status"], strict=True))
    assert status["8"] == Status.RUNNING  # no summary.json: killed (or still running)
    assert status["9"] == "diverged"
    assert status["10"] == "failed"
    assert (df["optimizer"] == "sgd").all()  # filled from .hydra/config.yaml
    killed = df.set_index("job").loc["8"]
    assert killed["epochs_run"] == 3 and killed["max_epochs"] == 6
    assert killed["best_val_acc"] == pytest.approx(0.99)  # from metrics.csv
    assert pd.isna(killed["stopped_early"])
    diverged = df.set_index("job").loc["9"]
    assert diverged["optimizer.lr"] == 5.0
    assert df["trial"].tolist() == list(range(11))


def test_final_gap_from_last_metrics_row(grid_runs) -> None:
    df = grid_runs.trials.set_index("job")
    for i, (_, _, acc, n, _) in enumerate(GRID):
        last = metrics_rows(n, acc, gap=0.01 * (i + 1))[-1]
        assert df.loc[str(i), "final_gap"] == pytest.approx(last["train_acc"] - last["val_acc"])


def test_epochs_table(trees: dict[str, Path]) -> None:
    ep = load_epochs(trees["grid"])
    expected = sum(n for *_, n, _ in GRID) + 3 + 4  # killed job + diverged job, empty skipped
    assert len(ep) == expected
    assert {"sweep_dir", "job", "trial", "study", "epoch", "val_loss", "lr"} <= set(ep.columns)
    assert ep.loc[ep["job"] == "9", "val_loss"].isna().sum() == 3


def test_best_trial_is_true_best(grid_runs) -> None:
    df = grid_runs.trials
    best = df.loc[best_index(df)]
    assert best["job"] == "3" and best["best_val_acc"] == pytest.approx(0.91)
    # the killed job (0.99 partial) must not win over finished ones
    assert best["status"] in ("completed", "early_stopped")


def test_command_line_reproduces_overrides(grid_runs, trees: dict[str, Path]) -> None:
    cmd = best_command(grid_runs, best_index(grid_runs.trials))
    assert cmd.startswith("python train.py ")
    assert command_overrides(cmd) == ["regularizer=l2", "scheduler=cosine"]
    runs = load_sweeps(trees["phase1"])
    best = best_index(runs.trials)
    cmd = best_command(runs, best)
    original = yaml.safe_load(
        (trees["phase1"] / "trial_3" / ".hydra" / "overrides.yaml").read_text()
    )
    assert command_overrides(cmd) == original


def test_phase2_command_adds_missing_pinned(trees: dict[str, Path]) -> None:
    runs = load_sweeps(trees["phase2"])
    words = command_overrides(best_command(runs, best_index(runs.trials)))
    assert words[0] == "regularizer=dropout"
    assert "optimizer=sgd" in words  # job's own override wins over pinned
    assert runs.sweeps[0].pinned == {"optimizer": "adam", "optimizer.lr": 0.0012}


def test_group_comparison_matches_groupby(grid_runs) -> None:
    df = grid_runs.trials
    assert {"regularizer", "scheduler"} <= set(comparable_columns(df))
    assert "optimizer.lr" not in comparable_columns(df)  # only one value
    table = compare_by(df, "regularizer")
    ok = df[df["status"].isin(["completed", "early_stopped"])]
    expected = ok.groupby("regularizer")["best_val_acc"].agg(["size", "mean", "max"])
    for reg in expected.index:
        assert table.loc[reg, "n"] == expected.loc[reg, "size"]
        assert table.loc[reg, "mean_best_val_acc"] == pytest.approx(expected.loc[reg, "mean"])
        assert table.loc[reg, "max_best_val_acc"] == pytest.approx(expected.loc[reg, "max"])
        sub = ok[ok["regularizer"] == reg]
        assert table.loc[reg, "mean_epochs_run"] == pytest.approx(sub["epochs_run"].mean())
        assert table.loc[reg, "mean_final_gap"] == pytest.approx(sub["final_gap"].mean())
    assert table.loc["none", "n_other"] == 1 and table.loc["l2", "n_other"] == 1
    assert table.index[0] == "l2"  # (0.85 + 0.91) / 2 is the best mean


def test_early_stopping_summary(grid_runs) -> None:
    info = early_stopping_summary(grid_runs.trials)
    assert info["budgets"] == [6]
    assert info["n_stopped_early"] == 3
    ok = finished(grid_runs.trials)
    stopped = ok[ok["status"] == "early_stopped"]["best_val_acc"].mean()
    full = ok[ok["status"] == "completed"]["best_val_acc"].mean()
    assert info["acc_delta"] == pytest.approx(stopped - full)


def test_lr_and_stats(grid_runs) -> None:
    keys = lr_varying_keys(grid_runs.epochs)
    cosine = {str(i) for i, g in enumerate(GRID) if g[1] == "cosine"}
    assert {job for _, job in keys} == cosine
    run = grid_runs.epochs[grid_runs.epochs["job"] == "3"]
    stats = stats_summary(run).set_index("stat")
    assert len(stats) == 12
    assert stats.loc["param_min", "first"] == pytest.approx(0.01)
    assert stats.loc["param_min", "last"] == pytest.approx(0.06)


def test_optuna_sweeps_merge(trees: dict[str, Path]) -> None:
    df = load_runs([trees["phase1"], trees["phase2"]])
    assert set(df["study"]) == {"phase1", "phase2"}
    assert len(df) == (5 + 1) + (3 + 1)  # job dirs + one study-only FAIL trial each
    p1 = df[df["study"] == "phase1"].set_index("trial")
    assert p1.loc[4, "status"] == "pruned"  # no summary.json, study says PRUNED
    assert p1.loc[5, "status"] == Status.FAILED and pd.isna(p1.loc[5, "job"])
    assert p1.loc[5, "optimizer.lr"] == pytest.approx(0.5)
    assert p1.loc[3, "optimizer.lr"] == pytest.approx(10**-2.5)
    assert df.loc[best_index(df), "study"] == "phase2"


def test_missing_and_empty_dirs_raise(trees: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(AnalysisError, match="no such directory"):
        load_runs(tmp_path / "nope")
    with pytest.raises(AnalysisError, match="no job directories"):
        load_runs(trees["empty"])


# --------------------------------------------------------------------------- report


def test_report_files_and_sections(report) -> None:
    text = report.report.read_text()
    for heading in (
        "# Sweep report",
        "## Best trials (top 5",
        "## Best configuration",
        "### regularizer",
        "## Early stopping",
        "## Learning-rate schedules",
        "## Optuna studies",
        "### phase1",
        "Pinned from phase 1",
        "## Parameter and feature statistics",
        "## Unfinished, failed",
    ):
        assert heading in text, heading
    assert "approximate" in text  # phase2 has no importances.csv
    assert report.best_command in text
    trials = pd.read_csv(report.trials_csv)
    assert len(trials) == 10 + 11 and "study" in trials.columns
    assert len(pd.read_csv(report.epochs_csv)) > 50
    names = {p.name for p in report.plots}
    assert {
        "best_curves.png",
        "compare_grid_regularizer.png",
        "lr_trace.png",
        "importances.png",
        "early_stopping.png",
        "stats.png",
    } <= names
    for plot in report.plots:
        data = plot.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 1000
        assert f"({plot.name})" in text


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--out" in out and "--top" in out and "report.md" in out


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("which", ["missing", "empty"])
def test_cli_bad_dir_exit_2(trees: dict[str, Path], which: str) -> None:
    path = trees["empty"] if which == "empty" else trees["empty"].parent / "does-not-exist"
    proc = _cli(str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


def test_cli_out_dir(trees: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli(str(trees["grid"]), "--out", str(out), "--top", "3")
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.md").is_file() and (out / "trials.csv").is_file()
    assert (out / "epochs.csv").is_file() and list(out.glob("*.png"))
    assert not (trees["grid"] / "report.md").exists()
    assert "python train.py regularizer=l2 scheduler=cosine" in proc.stdout


def test_default_out_is_first_sweep_dir(tmp_path: Path) -> None:
    sweep = build_grid(tmp_path)
    result = write_report(sweep, draw=False)
    assert result.out_dir == sweep and (sweep / "report.md").is_file()
    assert not list(sweep.glob("*.png"))
    # re-running on a dir that now holds outputs still sees the same jobs
    assert len(load_runs(sweep)) == 11


def test_garbled_and_running_jobs_do_not_crash(tmp_path: Path) -> None:
    sweep = tmp_path / "2026-11-26" / "22-30-00"
    sweep.mkdir(parents=True)
    job = write_job(sweep, "0", ["optimizer.lr=1e-3", "+seed=3"])
    (job / "summary.json").write_text('{"status": "compl')  # half-written
    (job / "metrics.csv").write_text(
        "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n"
        "1,inf,0.1,inf,0.1,0.1,1\n2,nan,0.3,nan,0.2,0.1,1\n3,1.0,0.3"
    )  # partial last line
    write_job(sweep, "1", ["optimizer.lr=1e-2", "+seed=4"])  # just started: only .hydra
    result = write_report(sweep, draw=False)
    df = result.runs.trials.set_index("job")
    assert df.loc["0", "status"] == df.loc["1", "status"] == Status.RUNNING
    assert df.loc["0", "best_val_acc"] == pytest.approx(0.2)
    assert df.loc["0", "final_gap"] == pytest.approx(0.1)  # last complete row
    assert set(df["study"]) == {"2026-11-26/22-30-00"}
    assert "No trial finished normally" in result.report.read_text()
    assert result.best_command == "python train.py optimizer.lr=1e-3 +seed=3"


def test_empty_importances_csv_falls_back(tmp_path: Path) -> None:
    sweep = build_optuna(tmp_path, "p", [0.8, 0.9, 0.85, 0.7], importances=False)
    (sweep / "importances.csv").write_text("param,importance\n")
    text = write_report(sweep, draw=False).report.read_text()
    assert "approximate" in text and "| optimizer.lr |" in text


def test_importances_of_optunas_evaluators_are_read_and_shown(tmp_path: Path) -> None:
    """The sweeper's importances.csv (every evaluator, long) → the main evaluator's ranking
    for the plot, one column per evaluator in the report."""
    import optuna

    from lab_optuna._search.importance import EVALUATORS, save_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(
        lambda t: (
            1
            - t.suggest_float("optimizer.lr", -1, 1) ** 2
            + 0.01 * (t.suggest_categorical("optimizer", ["sgd", "adam"]) == "sgd")
        ),
        n_trials=20,
    )
    sweep = build_optuna(tmp_path, "p", [0.8, 0.9, 0.85, 0.7], importances=False)
    written = save_importances(study, sweep / "importances.csv")
    info = load_sweeps(sweep).sweeps[0]
    main = written[written["evaluator"] == next(iter(EVALUATORS))]
    assert info.importances is not None and list(info.importances.columns) == [
        "param",
        "importance",
    ]
    assert list(info.importances["param"]) == list(main["param"]) == ["optimizer.lr", "optimizer"]
    assert list(info.importances["importance"]) == pytest.approx(list(main["importance"]))
    assert info.importance_table is not None
    assert list(info.importance_table.columns) == ["param", *EVALUATORS]
    text = write_report(sweep, draw=False).report.read_text()
    assert "| param | ped_anova | fanova | mean_decrease_impurity |" in text
    assert "approximate" not in text


# --------------------------------------------------------------------------- report details


def build_phases(root: Path) -> list[Path]:
    """Two studies that both vary ``regularizer``: phase 1 with random (mostly bad) learning
    rates, phase 2 with the best one pinned (all good). Pooled, ``none`` would average them."""
    accs = {
        "phase1": {"none": [0.10, 0.86], "l2": [0.12, 0.11]},
        "phase2": {"none": [0.90, 0.91], "l2": [0.92, 0.93]},
    }
    sweeps = []
    for study, by_reg in accs.items():
        sweep = root / study
        number = 0
        for reg, values in by_reg.items():
            for acc in values:
                rows = metrics_rows(3, acc)
                info = {"number": number, "study": study, "params": {"regularizer": reg}}
                write_job(
                    sweep,
                    f"trial_{number}",
                    [f"regularizer={reg}"],
                    config=job_config(reg, "none", 3),
                    metrics=rows,
                    trial=info,
                    summary=make_summary(rows, "completed", 3, info),
                )
                number += 1
        sweeps.append(sweep)
    return sweeps


def test_choices_are_compared_within_a_study_never_pooled(tmp_path: Path) -> None:
    sweeps = build_phases(tmp_path)
    runs = load_sweeps(sweeps)
    table = compare_by(runs.trials, "regularizer")
    assert table.index.names == ["study", "regularizer"]
    assert table.loc[("phase1", "none"), "mean_best_val_acc"] == pytest.approx(0.48)
    assert table.loc[("phase2", "none"), "mean_best_val_acc"] == pytest.approx(0.905)
    assert table.loc[("phase2", "l2"), "n"] == 2
    text = write_report(sweeps, out=tmp_path / "out", draw=True).report.read_text()
    for study in ("phase1", "phase2"):
        assert f"### regularizer (study {study})" in text
        assert f"(compare_{study}_regularizer.png)" in text
    assert "| none | 2 | 0.4800 |" in text and "| none | 2 | 0.9050 |" in text
    assert "0.6925" not in text  # the pooled mean of `none` over both phases
    assert "| none | 4 |" not in text


class _Saved:
    """The real figures the plot functions save (Figure.savefig still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from matplotlib.figure import Figure

        self.figures: list[Any] = []
        original = Figure.savefig

        def savefig(fig: Any, *args: Any, **kwargs: Any) -> Any:
            self.figures.append(fig)
            return original(fig, *args, **kwargs)

        monkeypatch.setattr(Figure, "savefig", savefig)


def _epoch_axes(fig: Any) -> list[Any]:
    return [ax for ax in fig.axes if "epoch" in ax.get_xlabel()]


def _assert_visible_integer_epochs(fig: Any) -> None:
    axes = _epoch_axes(fig)
    assert axes
    for ax in axes:
        left, right = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if left <= t <= right]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        for line in ax.get_lines():
            if line.get_gid() == "budget":  # the dashed budget marker, not a curve
                continue
            x = [v for v in line.get_xdata() if left <= float(v) <= right]
            if len(line.get_xdata()) and line.get_linestyle() != "None":
                assert x, "curve outside the axis"
                # one point and no marker draws nothing at all
                assert line.get_marker() not in (None, "", "None", " "), line.get_label()


def _assert_title_fits(fig: Any, title_start: str) -> None:
    from matplotlib.text import Text

    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_text().startswith(title_start)]
    assert texts, title_start
    box, page = texts[0].get_window_extent(), fig.bbox
    assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y1 <= page.y1, (box, page)


def test_one_epoch_runs_are_visible_on_integer_epoch_axes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import plots

    saved = _Saved(monkeypatch)
    sweep = tmp_path / "one"
    for i, reg in enumerate(["none", "l2"]):
        rows = metrics_rows(1, 0.8 + 0.01 * i, decay=False)
        write_job(
            sweep,
            str(i),
            [f"regularizer={reg}"],
            config=job_config(reg, "none", 1),
            metrics=rows,
            summary=make_summary(rows, "completed", 1),
        )
    runs = load_sweeps(sweep)
    run = runs.epochs[runs.epochs["job"] == "0"]
    title = "best trial: " + "a-very-long-study-name " * 12
    assert plots.best_curves(run, title, tmp_path / "b.png") is not None
    assert plots.group_curves(runs.trials, runs.epochs, "regularizer", tmp_path / "g.png")
    assert plots.lr_trace(runs.epochs, [(str(sweep), "0", "one #0")], tmp_path / "l.png")
    assert plots.stats_curves(run, "stats", tmp_path / "s.png")
    assert plots.epochs_vs_budget(runs.trials, tmp_path / "e.png")
    assert len(saved.figures) == 5
    for fig in saved.figures:
        _assert_visible_integer_epochs(fig)
    _assert_title_fits(saved.figures[0], "best trial:")
    _assert_title_fits(saved.figures[1], "validation curves by regularizer")


def test_long_epoch_axes_have_integer_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import plots

    saved = _Saved(monkeypatch)
    run = pd.DataFrame(metrics_rows(7, 0.9))
    plots.best_curves(run, "seven epochs", tmp_path / "b.png")
    _assert_visible_integer_epochs(saved.figures[0])
    ax = _epoch_axes(saved.figures[0])[0]
    assert ax.get_xlim()[0] <= 1 and ax.get_xlim()[1] >= 7


def test_statuses_come_from_the_record_and_the_trial_state(tmp_path: Path) -> None:
    """summary.json's status first; without one (or one left at running by a killed job) the
    trial's state from trial.json or the study; with neither, the job is running."""
    sweep = tmp_path / "s"
    rows = metrics_rows(2, 0.8)
    cases = {
        # job: (summary status or None, trial.json state or None, study state)
        "trial_0": (Status.EARLY_STOPPED, "COMPLETE", "COMPLETE"),
        "trial_1": (None, "PRUNED", "PRUNED"),
        "trial_2": (Status.RUNNING, "RUNNING", "FAIL"),  # killed; the sweeper failed it
        "trial_3": (None, "COMPLETE", "COMPLETE"),  # an app writing no summary.json
        "trial_4": (None, None, "RUNNING"),
        "trial_5": (Status.DIVERGED, "FAIL", "FAIL"),
    }
    records = []
    for number, (job, (status, state, study_state)) in enumerate(cases.items()):
        info = {
            "number": number,
            "study": "s",
            "params": {"optimizer.lr": 0.1 * (number + 1)},
            "state": state,
            "values": [0.5 + number / 100] if state == "COMPLETE" else None,
        }
        write_job(
            sweep,
            job,
            [f"optimizer.lr={0.1 * (number + 1)}"],
            metrics=rows if status else None,
            summary=make_summary(rows, status, 2) if status else None,
            trial=info if state else None,
        )
        records.append({"number": number, "state": study_state, "value": None})
    pd.DataFrame(records).to_csv(sweep / "study_trials.csv", index=False)
    df = load_runs(sweep).set_index("job")
    assert df["status"].to_dict() == {
        "trial_0": Status.EARLY_STOPPED,
        "trial_1": Status.PRUNED,
        "trial_2": Status.FAILED,
        "trial_3": Status.COMPLETED,
        "trial_4": Status.RUNNING,
        "trial_5": Status.DIVERGED,
    }
    assert df.loc["trial_3", "best_val_acc"] == pytest.approx(0.53)  # trial.json's value
    from analysis.compare import outcome_counts

    assert outcome_counts(df) == {"complete": 2, "pruned": 1, "fail": 2, "running": 1}


def test_analysis_spells_no_status_word() -> None:
    """Statuses come from lenet_lab.record (and Optuna's TrialState), never a literal."""
    import re

    words = "|".join(re.escape(f'"{s.value}"') for s in Status)
    for path in (REPO / "analysis").glob("*.py"):
        found = re.findall(words, path.read_text())
        assert not found, (path.name, found)


def test_run_curves_png_shows_one_epoch_and_a_title_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """curves.png of a run (lenet_lab.artifacts): the run title in full, a one-epoch run's
    points visible, whole epochs on the axis."""
    from lenet_lab.artifacts import plot_curves

    saved = _Saved(monkeypatch)
    title = (
        "model=lenet5 optimizer=adamw lr=0.00162354 regularizer=dropout "
        "normalization=batchnorm scheduler=onecycle loss=label_smoothing "
        "augmentation=flip_shift early_stopping=val_loss"
    )
    for n in (1, 12):
        assert plot_curves(metrics_rows(n, 0.9, decay=True), tmp_path / f"c{n}.png", title)
    assert (tmp_path / "c1.png").read_bytes().startswith(PNG_MAGIC)
    for fig in saved.figures:
        _assert_visible_integer_epochs(fig)
        _assert_title_fits(fig, "model=lenet5")
        lines = [line for ax in fig.axes for line in ax.get_lines()]
        assert len(lines) == 5 and all(line.get_marker() == "o" for line in lines)
    ax = _epoch_axes(saved.figures[1])[0]
    assert ax.get_xlim()[0] <= 1 and ax.get_xlim()[1] >= 12


def test_selection_chain_reports_holdout_best_and_test_mean(tmp_path: Path) -> None:
    """phase (hold-out) → final (test, 3 seeds) on one table: the best hold-out objective of
    the phase, the mean ± std of the final's objectives, listed in seed order."""

    def study(name: str, split: str, objectives: list[float]) -> Path:
        sweep = tmp_path / name
        for n, value in enumerate(objectives):
            rows = metrics_rows(2, value)
            summary = {**make_summary(rows, "completed", 2), "objective": value, "val_split": split}
            write_job(
                sweep,
                f"trial_{n}",
                [f"seed={3 - n}"],  # trial order is not seed order
                metrics=rows,
                summary=summary,
                trial={"number": n, "study": name, "params": {"seed": 3 - n}},
            )
        return sweep

    dirs = [study("phase", "holdout", [0.80, 0.85, 0.83]), study("final", "test", [0.9, 0.8, 0.7])]
    b = build_report(load_sweeps(dirs), tmp_path / "out", draw=False)
    text = "\n".join(b.lines)
    section = text[text.index("## Selection chain") : text.index("## Best trials")]
    assert "| phase | holdout | 3 | best 0.8500 (trial 1) |" in section
    means = "**0.8000 ± 0.1000** (seed 1: 0.7000, seed 2: 0.8000, seed 3: 0.9000)"
    assert f"| final | test | 3 | {means} |" in section

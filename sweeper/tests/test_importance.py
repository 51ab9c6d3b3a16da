"""sweeper.importance on real small Optuna studies (current Optuna's evaluators)."""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from conftest import sweep
from lab_optuna._search.importance import COLUMNS, EVALUATORS, param_importances, save_importances

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial: optuna.Trial) -> float:
    """``x`` decides almost everything, ``y`` a little, ``opt`` nothing; ``coef`` is
    conditional (only with ``opt=b``), like phase 2's regularizer coefficient."""
    x = trial.suggest_float("x", -1.0, 1.0)
    y = trial.suggest_float("y", -1.0, 1.0)
    opt = trial.suggest_categorical("opt", ["a", "b"])
    if opt == "b":
        trial.suggest_float("coef", 1e-5, 1e-1, log=True)
    return 1.0 - x * x - 0.05 * y * y


def study_with(n: int, directions: list[str] | None = None) -> optuna.Study:
    study = optuna.create_study(
        directions=directions or ["maximize"], sampler=optuna.samplers.RandomSampler(seed=3)
    )
    if directions and len(directions) == 2:

        def two(trial: optuna.Trial) -> tuple[float, float]:
            x, y = trial.suggest_float("x", -1, 1), trial.suggest_float("y", -1, 1)
            return x * x, 1.0 - y * y  # minimise x^2, maximise 1 - y^2

        study.optimize(two, n_trials=n)
    else:
        study.optimize(objective, n_trials=n)
    return study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    s = study_with(40)
    s.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))  # ignored by every evaluator
    return s


def test_every_evaluator_finds_the_parameter_that_matters(study: optuna.Study) -> None:
    df = param_importances(study)
    assert list(df.columns) == COLUMNS
    assert list(dict.fromkeys(df["evaluator"])) == list(EVALUATORS)  # default first
    assert set(df["objective"]) == {0}
    for name, rows in df.groupby("evaluator", sort=False):
        assert rows["importance"].sum() == pytest.approx(1.0), name
        assert rows["importance"].is_monotonic_decreasing, name
        assert rows["param"].iloc[0] == "x", name
        assert rows.set_index("param").loc["x", "importance"] > 0.5, name
    # PED-ANOVA (Optuna's default) rates the conditional parameter; the forests cannot
    assert "coef" in set(df.loc[df["evaluator"] == "ped_anova", "param"])
    assert "coef" not in set(df.loc[df["evaluator"] == "fanova", "param"])
    assert param_importances(study).equals(df)  # seeded: the same table twice


def test_save_importances_writes_the_csv_and_logs(
    study: optuna.Study, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "importances.csv"
    with caplog.at_level(logging.INFO, logger="lab_optuna._search.importance"):
        df = save_importances(study, path)
    back = pd.read_csv(path)
    assert list(back.columns) == COLUMNS and len(back) == len(df)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    x_line = next(r.getMessage() for r in caplog.records if " x " in r.getMessage())
    assert all(name in x_line for name in EVALUATORS)


def test_too_few_trials_give_an_empty_table_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study = study_with(2)
    with caplog.at_level(logging.WARNING, logger="lab_optuna._search.importance"):
        df = save_importances(study, tmp_path / "importances.csv")
    assert df.empty and list(df.columns) == COLUMNS
    assert "2 complete trial(s), at least 3 needed" in caplog.text
    assert list(pd.read_csv(tmp_path / "importances.csv").columns) == COLUMNS


def test_multi_objective_gets_importances_per_objective() -> None:
    df = param_importances(study_with(40, ["minimize", "maximize"]))
    assert set(df["objective"]) == {0, 1}
    for (objective, name), rows in df.groupby(["objective", "evaluator"]):
        assert rows["importance"].sum() == pytest.approx(1.0)
        assert rows["param"].iloc[0] == ("x" if objective == 0 else "y"), (objective, name)


def test_a_sweep_writes_the_chosen_evaluators_only(tmp_path: Path) -> None:
    proc = sweep(tmp_path, "hydra.sweeper.n_trials=6", "hydra.sweeper.importances=[ped_anova]")
    df = pd.read_csv(tmp_path / "out" / "importances.csv")
    assert set(df["evaluator"]) == {"ped_anova"} and set(df["param"]) == {"x", "y"}
    assert df["importance"].sum() == pytest.approx(1.0)
    assert "importance x" in proc.stderr + proc.stdout
    assert "fanova" not in proc.stderr + proc.stdout


def test_no_evaluators_write_no_importances(tmp_path: Path) -> None:
    sweep(tmp_path, "hydra.sweeper.n_trials=4", "hydra.sweeper.importances=[]")
    assert (tmp_path / "out" / "optimization_results.yaml").is_file()
    assert not (tmp_path / "out" / "importances.csv").exists()

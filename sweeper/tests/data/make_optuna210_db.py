"""Write ``optuna210.db``: a small SQLite study in the schema of optuna 2.10 (the fixture of
``check_schema``'s test; current Optuna needs ``optuna storage upgrade`` to open it).

Run with optuna 2.10 in a throw-away venv, never in the project's:

    python3 -m venv /tmp/oldoptuna
    /tmp/oldoptuna/bin/pip install 'optuna==2.10.1' 'sqlalchemy<2'
    cd tests/data && rm -f optuna210.db && /tmp/oldoptuna/bin/python make_optuna210_db.py
"""

from pathlib import Path

import optuna

assert optuna.__version__ == "2.10.1", optuna.__version__
path = Path(__file__).with_name("optuna210.db")
study = optuna.create_study(
    study_name="phase1", storage=f"sqlite:///{path.name}", direction="maximize"
)
outcomes = ["complete", "pruned", "complete", "fail"]
for number, outcome in enumerate(outcomes):
    trial = study.ask()
    lr = trial.suggest_float("optimizer.lr", 1e-4, 0.3, log=True)
    trial.suggest_categorical("optimizer", ["sgd", "adam"])
    for epoch in (1, 2):
        trial.report(0.5 + 0.1 * epoch + 0.01 * number, epoch)
    if outcome == "complete":
        study.tell(trial, 0.8 + 0.01 * number + lr)
    elif outcome == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
print(path, [t.state.name for t in study.trials])

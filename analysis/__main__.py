"""``python -m analysis``: turn Hydra multirun outputs into report.md, CSVs and plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from analysis.load import AnalysisError

DESCRIPTION = """\
Summarise one or more Hydra multirun sweep dirs (Optuna phases or plain grids such as
`python train.py -m regularizer=none,l2,l1,dropout`).

Writes into the first sweep dir (or --out):
  report.md    best trials, best config as a `python train.py ...` command, per-choice
               comparisons, early stopping, lr schedules, Optuna importances, search
               views (Optuna's history, slices, parallel coordinates and contour of the
               two most important parameters on the stored study; the timeline with the
               slot utilisation), parameter/feature statistics, failed/unfinished trials
  trials.csv   one row per trial/job: status, best_val_acc, epochs, wall time, parameters
  epochs.csv   every metrics.csv row with its sweep_dir/job/trial/study key
  *.png        plots referenced by report.md
"""

EPILOG = """\
examples:
  python -m analysis multirun/phase1
  python -m analysis multirun/phase1 multirun/phase2 --out reports/lenet --top 5

exit status: 0 ok, 2 bad arguments or an empty/missing sweep dir (one-line message on stderr).
from Python: `from analysis import load_runs, load_epochs, write_report`.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sweep_dirs",
        nargs="+",
        metavar="SWEEP_DIR",
        help="Hydra multirun output dir(s), e.g. multirun/phase1",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output directory (default: the first SWEEP_DIR)"
    )
    parser.add_argument(
        "--top",
        type=int,
        default=10,
        metavar="N",
        help="rows in the best-trials table (default: 10)",
    )
    parser.add_argument(
        "--no-plots", action="store_true", help="skip the PNG plots (faster; tables and CSVs only)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 2
    from analysis.report import write_report

    try:
        result = write_report(args.sweep_dirs, out=args.out, top=args.top, draw=not args.no_plots)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    trials = result.runs.trials
    print(f"{len(trials)} trials from {len(result.runs.sweeps)} sweep dir(s)")
    if result.best_command:
        from analysis.compare import best_index
        from analysis.markdown import fmt

        best = trials.loc[best_index(trials)]
        print(
            f"best: {best['best_val_acc']:.4f} (study {best['study']}, trial {fmt(best['trial'])})"
        )
        print(f"  {result.best_command}")
    print(f"wrote {result.report} (+ trials.csv, epochs.csv, {len(result.plots)} plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The optimisation loop: ask, launch and tell (``optimize.py``), how a job's end becomes a
trial state (``verdicts.py``), continuing a dead job's trial, the budget, the console, the
slots' overrides, SLURM jobs and the sweep's output files."""

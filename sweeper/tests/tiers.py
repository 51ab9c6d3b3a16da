"""Which tests run by default (a pytest plugin shared by the sweeper's and the lab's suites).

The default run keeps to the fast tests; ``--all`` (``make test-all``) adds the tests marked
with one of :data:`EXTRA` — those that start servers, schedule cluster jobs, read the real
data set or train for long. Deselected tests are counted in pytest's summary line.
"""

from __future__ import annotations

import pytest

#: Markers of the tests only ``--all`` runs.
EXTRA = ("slow", "postgres", "slurm", "multinode", "dashboard", "integration")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all",
        action="store_true",
        default=False,
        help=f"also run the tests marked {', '.join(EXTRA)} (make test-all)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--all") or config.getoption("markexpr"):
        return  # everything, or the caller chose with -m
    kept, dropped = [], []
    for item in items:
        (dropped if any(m in item.keywords for m in EXTRA) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("--all"):
        return None
    return f"default run: tests marked {', '.join(EXTRA)} are deselected (--all runs them)"

"""The lab's two exceptions: a bad config value, and a run ended on purpose.

Both sit at the bottom of the package: components, callbacks, the engine and ``train.py``
raise or catch them without importing one another.
"""

from __future__ import annotations

from .record import Status


class ConfigError(ValueError):
    """A config value is out of range; the message names the key and the bad value."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key  # the offending config key, e.g. "optimizer.lr"


class StopTraining(Exception):
    """Ends the run with ``status`` (early_stopped, pruned, diverged) and a ``reason``."""

    def __init__(self, status: Status, reason: str):
        super().__init__(reason)
        self.status, self.reason = Status(status), reason

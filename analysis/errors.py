"""Exceptions raised by the analysis package."""

from __future__ import annotations


class AnalysisError(Exception):
    """A user-facing problem with the input (missing/empty sweep dir, unwritable output).

    The message is a single line that names the offending path; the CLI prints it and
    exits with status 2.
    """

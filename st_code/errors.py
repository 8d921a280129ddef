"""st-code's errors: every problem a user can fix is one of these, with a message that names the
problem and the fix. The command-line tools print such an error as one ``error: ...`` line and exit
non-zero; anything else is a bug and keeps its traceback.

Each subclasses the built-in type it always was (``ValueError``...), so existing ``except`` clauses
keep working.
"""

from __future__ import annotations


class StCodeError(Exception):
    """Base class: a problem with the user's input, data or environment, explained in its message."""

    exit_code = 2


class UsageError(StCodeError, ValueError):
    """A bad argument or setting (a number out of range, an unknown name)."""


class MissingPathError(StCodeError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class RunConflictError(StCodeError, RuntimeError):
    """An output folder that belongs to another run: locked by a live process, or started with
    another configuration or other data."""


class TrainingDiverged(StCodeError, RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""

    exit_code = 3


class ServiceUnreachable(StCodeError, ConnectionError):
    """A server the run needs (an LLM endpoint) could not be reached at all."""


__all__ = ["StCodeError", "UsageError", "MissingPathError", "RunConflictError", "TrainingDiverged", "ServiceUnreachable"]

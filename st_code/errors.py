"""st-code's errors: every problem a user can fix is one of these, with a message that names the
problem and the fix. The command-line tools print such an error as one ``error: ...`` line and exit
non-zero; anything else is a bug and keeps its traceback.

Each subclasses the built-in type it always was (``ValueError``...), so existing ``except`` clauses
keep working.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable


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


#: What to do about the operating system's refusals a user can fix, by errno.
_OS_FIXES = {
    errno.ENOSPC: "free some space or write to another disk; nothing finished was replaced",
    errno.EDQUOT: "free some space or write to another disk; nothing finished was replaced",
    errno.EROFS: "the file system is read-only: pass a folder you can write to",
    errno.EACCES: "pass a path you may read or write (or change its permissions)",
    errno.EPERM: "pass a path you may read or write (or change its permissions)",
    errno.ELOOP: "a symbolic link there points back to itself: remove the loop or pass another path",
    errno.ENOTDIR: "a part of that path is a file, not a folder: pass another path",
    errno.EISDIR: "that path is a folder: pass a file",
    errno.ENAMETOOLONG: "pass a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or close other programs",
}


def os_error_line(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and what to do."""
    what = exc.strerror or os.strerror(exc.errno) if exc.errno else str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    fix = _OS_FIXES.get(exc.errno, "check the path and the disk, then rerun the same command")
    return f"{what}{where}: {fix}"


def positive_int(text: str) -> int:
    """argparse type for counts (``--batch-size``, ``-k``...): a whole number >= 1, refused at once rather
    than deep inside the work."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def run_command(command: Callable[[], int]) -> int:
    """Run a command-line entry point: a user's problem (:class:`StCodeError`, or the operating system
    refusing a path: a full disk, a read-only folder, a symlink loop) becomes one ``error:`` line on
    stderr and its exit status; anything else is a bug and keeps its traceback."""
    try:
        return command()
    except StCodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if isinstance(exc, ConnectionError) or exc.errno is None:
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        return 2


__all__ = ["run_command", "os_error_line", "positive_int", "StCodeError", "UsageError", "MissingPathError", "RunConflictError", "TrainingDiverged", "ServiceUnreachable"]

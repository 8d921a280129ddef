"""One run per output folder.

Two runs writing the same folder (a second terminal, a scheduler's retry) would interleave their
journals, stage files and checkpoints. :class:`FolderLock` takes an exclusive ``flock`` on
``FOLDER/.st-code.lock`` for the life of the run and refuses a second one with a line naming the
holder. The kernel drops the lock when its process dies, however it dies, so a lock left by a
killed run is simply taken over (and said so).

Inside one run, several processes (DDP ranks) read files one of them writes:
:func:`st_code.outputs.write_text_atomic` makes a reader see the old file or the new one, never a
half-written one (nor a crash leave one).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

from st_code.errors import RunConflictError, UsageError
from st_code.outputs import write_text_atomic  # noqa: F401 - its old home; the one atomic write lives in outputs

LOCK_NAME = ".st-code.lock"


class FolderLock:
    """``with FolderLock(folder, "training run"):`` holds ``folder`` for this process.

    Args:
        folder: the output folder (created if missing).
        purpose: what holds it, for the message a second run gets ("training run", "data_gen run"...).
        log: where to say that a stale lock was taken over.
    """

    def __init__(self, folder: str | Path, purpose: str, log: Callable[[str], None] = print) -> None:
        self.folder, self.purpose, self.log = Path(folder), purpose, log
        self._handle = None

    def __enter__(self) -> "FolderLock":
        import fcntl

        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"output folder {self.folder} is a file; pass a folder (it is created if missing)")
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle)
            handle.close()
            raise RunConflictError(
                f"{self.folder} is in use by another {holder.get('purpose', 'st-code run')} (pid {holder.get('pid', '?')} "
                f"on {holder.get('host', '?')}, started {holder.get('started', '?')}); wait for it to finish or stop "
                "it, or give this run another output folder") from None
        previous = _read(handle)
        if previous.get("pid"):
            self.log(f"note: took over the lock on {self.folder} left by pid {previous['pid']} ({previous.get('purpose')}, "
                     f"started {previous.get('started')}), which is no longer running")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose,
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        if self._handle is not None:
            (self.folder / LOCK_NAME).unlink(missing_ok=True)  # an orderly exit leaves nothing behind
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _read(handle) -> dict[str, Any]:
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}


__all__ = ["FolderLock", "LOCK_NAME", "write_text_atomic"]

"""Output folders that never take a user's files.

Every command that writes a folder (``st-code index/update/adapt/export``, evaluation, data_gen, the
recipe) goes through this module:

* :func:`check_output_folder` runs before any work. It refuses an output that is a file, that lies
  under a file, that is one of the command's inputs or contains one, or that already holds files the
  command does not recognise as its own (an index manifest, a run record...). Each refusal is one
  line naming the folder and the flag to choose another.
* :func:`staged_folder` builds a whole output beside its destination and swaps it in only when it is
  complete: a failure (a full disk, a crash, a bad input found late) removes the staging folder and
  leaves the old output as it was.
* :func:`write_text_atomic` / :func:`write_bytes_atomic`: one file, old or new, never half-written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from st_code.errors import UsageError


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare it as written
        return path.expanduser().absolute()


def _listing(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except OSError as exc:
        raise UsageError(f"{folder} cannot be read ({exc.strerror}); pass a folder you can write to") from None


def check_output_folder(out: str | Path, *, flag: str, what: str, owned: Callable[[Path], bool] = lambda _: False,
                        inputs: Sequence[str | Path] = (), ignore: Sequence[str] = ()) -> Path:
    """Check, before any work, that the command may write ``out``; returns it as a :class:`Path`.

    Args:
        out: the output folder the user named.
        flag: the option that names it (``--out``), for the message.
        what: what the command writes there ("code-search index"), for the message.
        owned: whether an existing, non-empty ``out`` is this command's own earlier output.
        inputs: folders or files the command reads; ``out`` may lie inside one (an index inside its
            repository) but may not be one, nor contain one.
        ignore: names in ``out`` that do not count as the user's files (a lock the command took).
    """
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.is_symlink() and not parent.exists():
            raise UsageError(f"{flag} {out}: {parent} is a broken or looping symbolic link; pass another folder")
        if parent.exists():
            if not parent.is_dir():
                where = "is a file" if parent == out else f"lies under {parent}, which is a file"
                raise UsageError(f"{flag} {out} {where}; pass a folder ({what} output is never written over a file)")
            break
    target = _resolved(out)
    for given in inputs:
        source = _resolved(Path(given))
        if target == source or source.is_relative_to(target):
            relation = "is" if target == source else "contains"
            raise UsageError(f"{flag} {out} {relation} the input {given}: writing the {what} there would replace it; "
                             f"pass a new folder for {flag}")
    if out.is_dir():
        foreign = [name for name in _listing(out) if name not in ignore]
        if foreign and not owned(out):
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise UsageError(f"{flag} {out} holds files that are not an st-code {what} ({shown}); st-code replaces "
                             f"only its own output: pass a new or empty folder for {flag}")
    return out


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """``with staged_folder(out) as staging:`` write the whole output into ``staging``; on a clean exit it
    replaces ``out`` (which must already be checked as the command's own), on an error it is removed and
    ``out`` stays as it was."""
    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` so that a crash at any point leaves one whole output."""
    aside = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.is_dir():
        out.rename(aside)
    staging.rename(out)
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def staged_files(target: Path) -> Iterator[Path]:
    """``with staged_files(folder) as staging:`` write files into ``staging`` (a hidden folder inside
    ``folder``); on a clean exit each one replaces its namesake in ``folder`` whole, on an error they are
    all removed and ``folder`` keeps its old files. For outputs that share a folder with other files
    (an export beside the model it came from)."""
    staging = target / f".st-code-staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        for file in sorted(p for p in staging.rglob("*") if not p.is_dir()):
            destination = target / file.relative_to(staging)
            destination.parent.mkdir(parents=True, exist_ok=True)
            file.replace(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_owned(folder: Path, names: Sequence[str]) -> list[str]:
    """Remove the entries ``names`` (files or whole folders the command wrote) from ``folder``; anything
    else in it stays. Returns what was removed."""
    removed = []
    for name in names:
        target = folder / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        removed.append(name)
    return removed


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``: readers see the old
    file or the new one, and a full disk leaves the old one (the temporary file is removed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """``with atomic_path(final) as tmp:`` let a library write ``tmp`` (``torch.save``, ``np.save``...);
    it replaces ``final`` on a clean exit (if it was written at all) and is removed on an error. Name the
    format where the library guesses it from the file's ending."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if tmp.exists():
            tmp.replace(path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


__all__ = ["check_output_folder", "staged_folder", "staged_files", "remove_owned", "write_text_atomic", "write_bytes_atomic",
           "atomic_path"]

"""The installed JDK's own Java sources (``lib/src.zip``): documented Java that a machine with a JDK holds.

Nearly every public method of the JDK carries Javadoc, so its sources give Java retrieval pairs with
no download and no LLM. They are split **by package**, once, here:

* :data:`TRAIN_PACKAGES` - the offline default may train on these (``data.offline.jdk_sources``);
* :data:`HELDOUT_PACKAGES` - never trained on; ``benchmarks/unseen_languages.py`` builds its Java sets
  from them.

A package split (as CodeSearchNet splits by repository) keeps the held-out sets' classes, and their
copies of each other's code, off the training side.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from st_code.errors import MissingPathError, UsageError

#: Held out for evaluation: java.util (with java.util.concurrent, function, stream, regex...), java.io,
#: java.net, java.time and java.text of java.base.
HELDOUT_PACKAGES: tuple[str, ...] = ("java.base/java/util/", "java.base/java/io/", "java.base/java/net/",
                                     "java.base/java/time/", "java.base/java/text/")
#: Training packages: the rest of java.base's public API and a few desktop, SQL and HTTP packages, about
#: 2,200 files. None lies under a held-out package.
TRAIN_PACKAGES: tuple[str, ...] = ("java.base/java/lang/", "java.base/java/nio/", "java.base/java/security/",
                                   "java.base/java/math/", "java.sql/", "java.net.http/java/",
                                   "java.desktop/java/awt/", "java.desktop/javax/swing/")


def find_jdk_sources() -> Path | None:
    """The installed JDK's ``src.zip`` (``javac``'s JDK first, then the newest under /usr/lib/jvm), or None.

    A JDK whose ``lib/src.zip`` is a dangling link (Debian's openjdk without its -source package) is passed
    over."""
    candidates = []
    javac = shutil.which("javac")
    if javac:
        candidates.append(Path(javac).resolve().parents[1] / "lib" / "src.zip")
    candidates += sorted(Path("/usr/lib/jvm").glob("*/lib/src.zip"), reverse=True)
    return next((c for c in candidates if c.is_file()), None)


def resolve_jdk_sources(setting: bool | str | Path) -> Path | None:
    """The ``src.zip`` a ``jdk_sources`` setting means: ``True`` the installed JDK's (None if there is none),
    a path itself."""
    return find_jdk_sources() if setting is True else Path(setting)


def extract_packages(source: str | Path, packages: tuple[str, ...], folder: str | Path) -> int:
    """Extract the ``.java`` files under ``packages`` (``module/path/`` prefixes) of a JDK ``src.zip`` into
    ``folder``; returns how many."""
    source = Path(source)
    if not source.is_file():
        raise MissingPathError(f"JDK sources {source}: no such file (a JDK's lib/src.zip)")
    count = 0
    try:
        with zipfile.ZipFile(source) as archive:
            for name in archive.namelist():
                if name.endswith(".java") and name.startswith(packages):
                    archive.extract(name, folder)
                    count += 1
    except zipfile.BadZipFile:
        raise UsageError(f"JDK sources {source}: not a zip archive (give a JDK's lib/src.zip)") from None
    return count


__all__ = ["HELDOUT_PACKAGES", "TRAIN_PACKAGES", "find_jdk_sources", "resolve_jdk_sources", "extract_packages"]

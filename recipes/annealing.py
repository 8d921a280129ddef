#!/usr/bin/env python
"""CodeR's Annealing curriculum, end to end: ``python recipes/annealing.py`` is ``st-code train`` (see
``st-code train --help``); it runs the embedded offline default when no --config is given.

The command lives in the package (:mod:`st_code.training.command`), so a pip-installed user has it too;
this file stays for checkouts, scripts and ``accelerate launch recipes/annealing.py``.
"""

from __future__ import annotations

import sys

from st_code.training.command import (  # noqa: F401 - the recipe's names, for scripts that import them
    DEFAULT_CONFIG_FILE, DRY_RUN_BATCH, DRY_RUN_QUERIES, DRY_RUN_ROWS, apply_overrides, build_parser, dry_run,
    load_raw, parse_args, run,
)
from st_code.training.command import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="annealing.py")


if __name__ == "__main__":
    sys.exit(main())

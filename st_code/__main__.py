"""``python -m st_code``: the ``st-code`` command (see :mod:`st_code.cli`)."""

import sys

from st_code.cli import main

sys.exit(main())

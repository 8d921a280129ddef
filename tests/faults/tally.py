"""Tally the fault cases as a user meets them: each one run as its own process (a command line, or
``python -c`` for the API cases), its outcome sorted into clear / unclear / traceback / silent /
lost (see runner.py). Point ``--checkout`` at another working tree (``git worktree add``) to
measure an older version with the same cases.

    python tests/faults/tally.py                          # this checkout, every case (~10 min on 2 cores)
    python tests/faults/tally.py --checkout /tmp/old --only recipe
    python tests/faults/tally.py --only cli --match 'index|search'    # some cases
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.faults.cases import CASES, ROOT, Assets  # noqa: E402
from tests.faults.runner import KINDS, run_in_subprocess  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the working tree whose code runs the cases")
    parser.add_argument("--only", nargs="*", help="tools to run: recipe data_gen evaluation cli api")
    parser.add_argument("--match", help="only the cases whose id matches this regular expression")
    parser.add_argument("--json", type=Path, help="also write the outcome of every case here")
    args = parser.parse_args(argv)

    import st_code
    from st_code.testing import save_tiny_qwen2
    from tests.test_data_gen import scripted

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        tiny = save_tiny_qwen2(scratch / "tiny")
        saved = scratch / "saved"
        st_code.build_model(tiny, pooling="mean", device="cpu").save(str(saved))
        assets = Assets(tiny_qwen=tiny, saved_model=str(saved), scripted=scripted)
        outcomes: dict[str, dict] = {}
        start = time.time()
        for case in CASES:
            if (args.only and case.tool not in args.only) or (args.match and not re.search(args.match, case.id)):
                continue
            folder = scratch / case.id
            folder.mkdir()
            outcome = run_in_subprocess(case, folder, assets, checkout=args.checkout.resolve())
            outcomes[case.id] = {"tool": case.tool, "kind": outcome.kind, "detail": outcome.detail[-300:]}
            print(f"{outcome.kind:<9} {case.tool:<10} {case.id}", flush=True)
    counts = Counter(o["kind"] for o in outcomes.values())
    print(f"\n{len(outcomes)} cases in {time.time() - start:.0f}s: "
          + ", ".join(f"{counts.get(kind, 0)} {kind}" for kind in KINDS))
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

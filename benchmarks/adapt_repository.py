"""st-code adapt on two real trees of this machine: base vs adapted, on held-out files and general sets.

    python benchmarks/adapt_repository.py [--minutes 20] [--output-dir runs/adapt-bench] [--trees ...]

Trees (nothing downloaded; both exist on every machine st-code's setup made):
* ``stdlib-family``: six standard-library packages (asyncio, email, http, urllib, xml, json) copied into one
  folder, with two whole packages held out (``--heldout-paths email/ json/``): Python, ~3,100 units.
* ``pyarrow-cpp``: the C and C++ sources and headers that the installed ``pyarrow`` ships
  (``--languages C C++``, 15% of files held out): ~1,700 units.

Each runs ``st-code adapt`` as a user types it with the default model (the packaged MiniLM) and the
default budget, and the table comes from each run's ``report/report.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB_PACKAGES = ("asyncio", "email", "http", "urllib", "xml", "json")


def stdlib_family(folder: Path) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in STDLIB_PACKAGES:
        if not (folder / name).exists():
            shutil.copytree(stdlib / name, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def pyarrow_tree() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyarrow")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pyarrow is not installed (it comes with datasets)")
    return Path(list(spec.submodule_search_locations)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--output-dir", default="runs/adapt-bench")
    parser.add_argument("--trees", nargs="*", default=["stdlib-family", "pyarrow-cpp"],
                        choices=["stdlib-family", "pyarrow-cpp"])
    args = parser.parse_args()
    out = Path(args.output_dir)
    runs = {
        "stdlib-family": (stdlib_family(out / "trees" / "stdlib-family"), ["--heldout-paths", "email/", "json/"]),
        "pyarrow-cpp": (pyarrow_tree(), ["--languages", "C", "C++"]),
    }
    rows = []
    for name in args.trees:
        tree, extra = runs[name]
        command = [sys.executable, "-m", "st_code", "adapt", str(tree), "--out", str(out / name), "--minutes",
                   str(args.minutes), "--keep-index", *extra]
        print("$", " ".join(command[1:]), flush=True)
        start = time.time()
        done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        wall = time.time() - start
        if done.returncode not in (0, 1):
            raise SystemExit(f"{name}: st-code adapt failed with exit {done.returncode}")
        report = json.loads((out / name / "report" / "report.json").read_text())
        decision, details = report["decision"], report["details"]
        counts = details["per_language"]
        rows.append((name, sum(c["units"] for c in counts.values()), sum(c["documented"] for c in counts.values()),
                     details["files"], decision, details["plan"], wall))
    print("\n| tree | units (documented) | files train / held-out | steps | repository held-out base -> adapted "
          "| general sets base -> adapted | verdict | wall min |")
    print("|---|---|---|---|---|---|---|---|")
    for name, units, documented, files, d, plan, wall in rows:
        general = (f"{d['general_base']:.2f} -> {d['general_adapted']:.2f}" if d["general_base"] is not None else "-")
        print(f"| {name} | {units:,} ({documented:,}) | {files['train']} / {files['heldout']} | {plan['max_steps']} | "
              f"{d['repository_base']:.2f} -> {d['repository_adapted']:.2f} "
              f"({d['repository_adapted'] - d['repository_base']:+.2f}) | {general} | "
              f"{'adapted kept' if d['accepted'] else 'base kept'} | {wall / 60:.1f} |")
    print("\nper-set scores: <output-dir>/<tree>/report/report.md")


if __name__ == "__main__":
    main()

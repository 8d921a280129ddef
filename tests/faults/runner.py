"""Running a fault case and sorting its outcome:

* ``clear``: the tool stopped with a non-zero exit and one ``error:`` line that says what the case
  expects (for an API case: an exception whose message says it), and nothing finished was lost;
* ``unclear``: it stopped, without a traceback, but without saying what went wrong;
* ``traceback``: a raw traceback reached the user;
* ``silent``: it went through (exit 0) as if nothing were wrong;
* ``lost``: a file holding finished work changed or disappeared.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from tests.faults.cases import ROOT, Assets, Case

KINDS = ("clear", "unclear", "traceback", "silent", "lost")


@dataclass
class Outcome:
    kind: str
    detail: str


def _digest(path: Path) -> str | None:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None


def classify(case: Case, returncode: int | None, output: str, raised: str | None, changed: list[str]) -> Outcome:
    if changed:
        return Outcome("lost", f"finished work changed: {changed}")
    expect = re.compile(case.expect, re.DOTALL)
    if case.tool == "api":
        if raised is None:
            return Outcome("silent", "no exception")
        return Outcome("clear" if expect.search(raised) else "traceback", raised[-500:])
    if raised is not None or "Traceback (most recent call last)" in output:
        return Outcome("traceback", (raised or output)[-800:])
    if returncode == 0:
        return Outcome("silent", output[-500:])
    errors = [line for line in output.splitlines() if "error:" in line]
    if errors and expect.search(output[output.find(errors[0]):]) and returncode == case.exit_code:
        return Outcome("clear", errors[0][:300])
    return Outcome("unclear", f"exit {returncode}: {output[-500:]}")


def _recipe_main():
    spec = importlib.util.spec_from_file_location("annealing_recipe", ROOT / "recipes" / "annealing.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _main(tool: str):
    if tool == "recipe":
        return _recipe_main()
    if tool == "data_gen":
        from data_gen.__main__ import main
        return main
    from st_code.evaluation.__main__ import main
    return main


def run_in_process(case: Case, tmp: Path, assets: Assets) -> Outcome:
    """The case's command line called as a function in this process (or its API code executed)."""
    with case.build(tmp, assets) as setup:
        before = {str(p): _digest(p) for p in setup.protect}
        out = io.StringIO()
        returncode, raised = None, None
        cwd = os.getcwd()
        try:
            with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
                if setup.code is not None:
                    exec(compile(setup.code, f"<{case.id}>", "exec"), {"__name__": "__case__"})
                    returncode = 0
                else:
                    returncode = _main(case.tool)(setup.argv)
        except SystemExit as exc:  # argparse
            returncode = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - what escapes is what a user would see
            raised = f"{type(exc).__name__}: {exc}" if case.tool == "api" else traceback.format_exc()
        finally:
            os.chdir(cwd)
        changed = [p for p, digest in before.items() if _digest(Path(p)) != digest]
    return classify(case, returncode, out.getvalue(), raised, changed)


def run_in_subprocess(case: Case, tmp: Path, assets: Assets, checkout: Path = ROOT,
                      python: str = sys.executable) -> Outcome:
    """The case as a user types it, against the code in ``checkout`` (to measure an older version too)."""
    with case.build(tmp, assets) as setup:
        before = {str(p): _digest(p) for p in setup.protect}
        if setup.code is not None:
            command = [python, "-c", setup.code]
        elif case.tool == "recipe":
            command = [python, str(checkout / "recipes" / "annealing.py"), *setup.argv]
        elif case.tool == "data_gen":
            command = [python, "-m", "data_gen", *setup.argv]
        else:
            command = [python, "-m", "st_code.evaluation", *setup.argv]
        env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        result = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env, timeout=900)
        changed = [p for p, digest in before.items() if _digest(Path(p)) != digest]
    output = result.stdout + result.stderr
    raised = None
    if case.tool == "api" and result.returncode != 0:
        last = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raised = last[-1] if last else f"exit {result.returncode}"
    return classify(case, result.returncode, output, raised, changed)


__all__ = ["KINDS", "Outcome", "classify", "run_in_process", "run_in_subprocess"]

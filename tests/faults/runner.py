"""Running a fault case and sorting its outcome:

* ``clear``: the tool stopped with a non-zero exit and one ``error:`` line that says what the case
  expects (for an API case: an exception whose message says it), and nothing finished was lost;
* ``unclear``: it stopped, without a traceback, but without saying what went wrong;
* ``traceback``: a raw traceback reached the user;
* ``silent``: it went through (exit 0) as if nothing were wrong;
* ``hung``: it was still running after the case's time limit (a named pipe read forever, say);
* ``lost``: a file holding finished work (or a user's own file) changed or disappeared, or a failed run
  left its staging files behind.

A case whose right answer is to go on (exit 0, e.g. a named pipe skipped with a count) says so with
``exit_code=0``; it is ``clear`` when it exits 0 and prints what it expects.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from tests.faults.cases import ROOT, Assets, Case, CaseSkipped

KINDS = ("clear", "unclear", "traceback", "silent", "hung", "lost", "skipped")


@dataclass
class Outcome:
    kind: str
    detail: str


def _digest(path: Path) -> str | None:
    """A file's content hash; for a folder, every file in it by relative path (a user's tree must survive whole)."""
    if path.is_file():
        return hashlib.sha1(path.read_bytes()).hexdigest()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        return hashlib.sha1("".join(f"{p.relative_to(path)}:{_digest(p)}\n" for p in files).encode()).hexdigest()
    return None


def _debris(folders: list[Path]) -> list[str]:
    """Staging and temporary files a failed run left behind (they keep a full disk full)."""
    marks = (".staging-", ".building-", ".tmp")
    return [str(p) for folder in folders if folder.is_dir() for p in folder.rglob("*") if any(m in p.name for m in marks)]


def classify(case: Case, returncode: int | None, output: str, raised: str | None, changed: list[str]) -> Outcome:
    if changed:
        return Outcome("lost", f"finished work changed or staging left behind: {changed}")
    if returncode == "hung":
        return Outcome("hung", f"still running after {case.timeout}s: {output[-300:]}")
    if case.exit_code == 0:  # the right answer is to go on, and say what was passed over
        ok = returncode == 0 and raised is None and re.search(case.expect, output, re.DOTALL)
        return Outcome("clear" if ok else "traceback" if raised else "unclear", (raised or output)[-500:])
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
    if tool == "cli":
        from st_code.cli import main
        return main
    from st_code.evaluation.__main__ import main
    return main


class _Hung(BaseException):
    """Raised by the alarm in a case that outlives its time limit."""


def _on_alarm(signum, frame):
    raise _Hung()


def run_in_process(case: Case, tmp: Path, assets: Assets) -> Outcome:
    """The case's command line called as a function in this process (or its API code executed), stopped
    by an alarm after ``case.timeout`` seconds."""
    try:
        with case.build(tmp, assets) as setup:
            before = {str(p): _digest(p) for p in setup.protect}
            out = io.StringIO()
            returncode, raised = None, None
            cwd = os.getcwd()
            timed = threading.current_thread() is threading.main_thread()
            if timed:
                previous = signal.signal(signal.SIGALRM, _on_alarm)
                signal.alarm(case.timeout)
            try:
                with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
                    if setup.code is not None:
                        exec(compile(setup.code, f"<{case.id}>", "exec"), {"__name__": "__case__"})
                        returncode = 0
                    else:
                        returncode = _main(case.tool)(setup.argv)
            except _Hung:
                returncode = "hung"
            except SystemExit as exc:  # argparse
                returncode = exc.code if isinstance(exc.code, int) else 2
            except Exception as exc:  # noqa: BLE001 - what escapes is what a user would see
                raised = f"{type(exc).__name__}: {exc}" if case.tool == "api" else traceback.format_exc()
            finally:
                if timed:
                    signal.alarm(0)
                    signal.signal(signal.SIGALRM, previous)
                os.chdir(cwd)
            changed = [p for p, digest in before.items() if _digest(Path(p)) != digest] + _debris(setup.clean)
    except CaseSkipped as exc:
        return Outcome("skipped", str(exc))
    except AssertionError as exc:  # the case's own check after the run: a user's file or the disk was left wrong
        return Outcome("lost", str(exc))
    return classify(case, returncode, out.getvalue(), raised, changed)


def run_in_subprocess(case: Case, tmp: Path, assets: Assets, checkout: Path = ROOT,
                      python: str = sys.executable) -> Outcome:
    """The case as a user types it, against the code in ``checkout`` (to measure an older version too)."""
    try:
        with case.build(tmp, assets) as setup:
            before = {str(p): _digest(p) for p in setup.protect}
            if setup.code is not None:
                command = [python, "-c", setup.code]
            elif case.tool == "recipe":
                command = [python, str(checkout / "recipes" / "annealing.py"), *setup.argv]
            elif case.tool == "data_gen":
                command = [python, "-m", "data_gen", *setup.argv]
            elif case.tool == "cli":
                command = [python, "-m", "st_code", *setup.argv]
            else:
                command = [python, "-m", "st_code.evaluation", *setup.argv]
            env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
                   "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            try:
                result = subprocess.run(command, cwd=checkout, capture_output=True, text=True, env=env,
                                        timeout=case.timeout, stdin=subprocess.DEVNULL)
                returncode, output = result.returncode, result.stdout + result.stderr
            except subprocess.TimeoutExpired as exc:
                returncode, output = "hung", str(exc.stderr or "")
            changed = [p for p, digest in before.items() if _digest(Path(p)) != digest] + _debris(setup.clean)
    except CaseSkipped as exc:
        return Outcome("skipped", str(exc))
    except AssertionError as exc:
        return Outcome("lost", str(exc))
    raised = None
    if case.tool == "api" and returncode not in (0, "hung"):
        last = [line for line in output.strip().splitlines() if line.strip()]
        raised = last[-1] if last else f"exit {returncode}"
    return classify(case, returncode, output, raised, changed)


__all__ = ["KINDS", "Outcome", "classify", "run_in_process", "run_in_subprocess"]

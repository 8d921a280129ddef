"""What ``st-code adapt`` is asked to do, checked without the heavy libraries (the command line answers bad
input before importing sentence-transformers)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from st_code.adapt.gate import GENERAL_SETS
from st_code.data.offline_pairs import HELDOUT_SET_NAMES
from st_code.data.repository import LANGUAGES
from st_code.assets import MINILM
from st_code.errors import MissingPathError, UsageError
from st_code.search.manifest import is_index


@dataclass
class AdaptOptions:
    """What ``st-code adapt`` was asked to do (see ``st-code adapt --help``)."""

    repository: str
    model: str = MINILM
    out: str | None = None
    minutes: float = 20.0
    heldout_percent: float = 15.0
    heldout_paths: list[str] | None = None
    seed: int = 0
    learning_rate: float = 5e-5
    batch_size: int = 32
    train_seq_length: int = 128
    languages: list[str] | None = None
    general_sets: list[str] = field(default_factory=lambda: list(GENERAL_SETS))
    max_steps: int | None = None
    max_general_loss: float = 1.0
    llm: str | None = None
    api_base: list[str] = field(default_factory=list)
    llm_max_units: int = 500
    index: str | None = None
    rebuild_index: bool | None = None  # None: ask when the terminal is interactive
    overwrite: bool = False
    device: str | None = None

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("st-code-adapt") / Path(self.repository).resolve().name

    def check(self) -> Path:
        """The repository's path, or the error for options that cannot run; light, so the command line
        answers a mistyped path or a number out of range at once, before any reading or training."""
        repo = Path(self.repository)
        if not repo.exists():
            raise MissingPathError(f"repository {repo} does not exist")
        if not repo.is_dir():
            raise UsageError(f"repository {repo} is not a folder: pass the repository's root folder")
        _finite_above(self.minutes, 0, "--minutes")
        _finite_above(self.learning_rate, 0, "--learning-rate")
        if not (math.isfinite(self.heldout_percent) and 0 < self.heldout_percent < 100):
            raise UsageError(f"--heldout-percent must be between 0 and 100 (exclusive): the share of each language's "
                             f"files held out to judge the result, got {self.heldout_percent:g}")
        if not (math.isfinite(self.max_general_loss) and self.max_general_loss >= 0):
            raise UsageError(f"--max-general-loss must be a number >= 0 (NDCG@10 x100 the general sets may lose), "
                             f"got {self.max_general_loss:g}")
        for name, value, least in (("--batch-size", self.batch_size, 2), ("--max-steps", self.max_steps, 1),
                                   ("--train-seq-length", self.train_seq_length, 8),
                                   ("--llm-max-units", self.llm_max_units, 1)):
            if value is not None and (not isinstance(value, int) or value < least):
                why = " (in-batch negatives need two pairs)" if name == "--batch-size" else ""
                raise UsageError(f"{name} must be a whole number >= {least}{why}, got {value!r}")
        unknown = sorted(set(self.languages or []) - set(LANGUAGES))
        if unknown:
            raise UsageError(f"--languages: unknown language(s) {unknown}; use names as st-code spells them: "
                             f"{', '.join(LANGUAGES)}")
        unknown_sets = [name for name in self.general_sets if name not in HELDOUT_SET_NAMES]
        if unknown_sets:
            raise UsageError(f"--general-sets: unknown built-in set(s) {unknown_sets}; available: "
                             f"{', '.join(HELDOUT_SET_NAMES)}")
        if self.llm and not self.api_base and "/" not in self.llm:
            raise UsageError(f"--llm {self.llm}: give a litellm model name (provider/model, e.g. "
                             "hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct) and --api-base for a self-hosted server")
        if self.index and Path(self.index).exists() and not is_index(Path(self.index)):
            raise UsageError(f"--index {self.index} is not a code-search index (no manifest.json beside its units): pass "
                             "the folder st-code index wrote, or leave --index out")
        check_adapt_folder(self.out_dir(), repo, self.index)
        return repo


#: What ``st-code adapt`` writes in its output folder; ``--overwrite`` removes these and nothing else.
ADAPT_OUTPUTS = ("run", "scores", "plan.json", "model", "llm", "adapt_config.yaml")
#: The files of ``report/`` that adapt writes (a user's notes beside them stay).
REPORT_FILES = ("report.md", "report.json", "scores.png")
#: The file that marks a folder as adapt's own.
MARKER = "st-code-adapt.json"


def is_adapt_folder(folder: Path) -> bool:
    """Whether ``folder`` is an earlier ``st-code adapt`` output (this version's marker, or 0.2's layout)."""
    return (folder / MARKER).is_file() or (folder / "data" / "split.json").is_file() or (folder / "plan.json").is_file()


def check_adapt_folder(out: Path, repo: Path, index: str | None = None) -> None:
    from st_code.locking import LOCK_NAME
    from st_code.outputs import check_output_folder

    check_output_folder(out, flag="--out", what="adapt output", owned=is_adapt_folder, ignore=(LOCK_NAME,),
                        inputs=[repo, *([index] if index else [])])


def _finite_above(value: float, least: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > least):
        raise UsageError(f"{name} must be > {least:g}, got {value}")


__all__ = ["AdaptOptions", "ADAPT_OUTPUTS", "REPORT_FILES", "MARKER", "is_adapt_folder", "check_adapt_folder"]

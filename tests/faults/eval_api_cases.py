"""Fault cases of ``st-code evaluate`` and of a few lines of the Python API: a typo in a model path, a
damaged ``modules.json``, bad qrels, an empty or unknown set, impossible pooling or LoRA settings. Each must
end in one clear line naming the problem and the fix (registered into ``tests.faults.cases.CASES``)."""

from __future__ import annotations

from tests.faults.cases import Setup, case


# -- evaluation --------------------------------------------------------------------------------------------
@case("evaluation", r"no saved model at '.*runs/anealing/final'")
def case_eval_typo_in_the_model_path(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(argv=[str(tmp / "runs" / "anealing" / "final"), "--builtin", "HumanEval-doc2code",
                      "--output-dir", str(tmp / "eval")])


@case("evaluation", r"modules\.json is damaged")
def case_eval_corrupt_modules_json(tmp, assets):
    import shutil

    model = tmp / "model"
    shutil.copytree(assets.saved_model, model)
    (model / "modules.json").write_text("{ not json")
    yield Setup(argv=[str(model), "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"dataset .*/missing\.jsonl does not exist")
def case_eval_missing_local_set(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--local", str(tmp / "missing.jsonl"), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"qrels/test\.tsv:1: score 'yes' is not a number")
def case_eval_bad_qrels(tmp, assets):
    folder = tmp / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "def f(): pass"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "nothing"}\n')
    (folder / "qrels" / "test.tsv").write_text("q1\td1\tyes\n")
    yield Setup(argv=[assets.saved_model, "--local", str(folder), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"argument --builtin: invalid choice: 'HumanEval'")
def case_eval_unknown_builtin_set(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"--output-dir .* is a file; pass a folder")
def case_eval_output_dir_is_a_file(tmp, assets):
    (tmp / "eval").write_text("a file")
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")],
                protect=[tmp / "eval"])


@case("evaluation", r"CosQAA")
def case_eval_unknown_mteb_task(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--tasks", "CosQAA", "--output-dir", str(tmp / "eval")])


@case("evaluation", r"argument --batch-size: expected a whole number >= 1, got 0")
def case_eval_zero_batch_size(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--batch-size", "0"])


@case("evaluation", r"nothing to evaluate: give a benchmark, task names, local sets or built-in sets")
def case_eval_nothing_to_evaluate(tmp, assets):
    yield Setup(argv=[assets.saved_model, "--output-dir", str(tmp / "eval")])


@case("evaluation", r"empty\.jsonl: no usable \(query, positive\) rows")
def case_eval_empty_local_set(tmp, assets):
    (tmp / "empty.jsonl").write_text("\n")
    yield Setup(argv=[assets.saved_model, "--local", str(tmp / "empty.jsonl"), "--output-dir", str(tmp / "eval")])


@case("evaluation", r"is in use by another evaluation run \(pid \d+")
def case_eval_second_run_on_the_same_folder(tmp, assets):
    from st_code.locking import FolderLock

    with FolderLock(tmp / "eval", "evaluation run", log=lambda _: None):
        yield Setup(argv=[assets.saved_model, "--builtin", "HumanEval-doc2code", "--output-dir", str(tmp / "eval")])


# -- Python API -----------------------------------------------------------------------------------------------
@case("api", r"no saved model at '.*runs/anealing/final'")
def case_api_load_model_typo(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(code=f"import st_code\nst_code.load_model({str(tmp / 'runs' / 'anealing' / 'final')!r})")


@case("api", r"no saved model at 'runs/anealing/final'")
def case_api_load_model_relative_typo(tmp, assets):
    (tmp / "runs").mkdir()
    yield Setup(code=f"import os, st_code\nos.chdir({str(tmp)!r})\nst_code.load_model('runs/anealing/final')")


@case("api", r"unknown pooling 'max'")
def case_api_unknown_pooling(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, pooling='max')")


@case("api", r"LoRA target\(s\) \['qkv'\] match no Linear layer")
def case_api_lora_target_missing(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, lora={{'target_modules': ['qkv']}})")


@case("api", r"PMA embedding_dim=50 is not divisible by num_heads=32")
def case_api_pma_heads_do_not_divide(tmp, assets):
    yield Setup(code=f"import st_code\nst_code.build_model({assets.tiny_qwen!r}, pooling='pma', embedding_dim=50, "
                     "pma_num_heads=32)")


@case("api", r"concurrency must be a whole number of calls in flight, >= 1 \(got 0\)")
def case_api_llm_client_concurrency_zero(tmp, assets):
    yield Setup(code="from st_code.llm import LLMClient\n"
                     "LLMClient('openai/x', ['http://127.0.0.1:9/v1'], concurrency=0)")

"""Fault cases of ``python -m data_gen``: bad numbers, an unknown provider, language or task, a server
that is down, a corpus without code, stages out of order, a second run on a finished folder. Each must end
in one clear line naming the problem and the fix (registered into ``tests.faults.cases.CASES``)."""

from __future__ import annotations


from tests.faults.cases import (Setup, case, code_corpus, data_gen_argv, dead_api_base, finished_generate,
                                one_function_corpus)


# -- data_gen ---------------------------------------------------------------------------------------------
@case("data_gen", r"concurrency must be a whole number of calls in flight, >= 1 \(got 0\)")
def case_data_gen_concurrency_zero(tmp, assets):
    done = finished_generate(tmp)
    yield Setup(argv=data_gen_argv(tmp, "generate", "--concurrency", "0"), protect=[done])


@case("data_gen", r"--max-samples: expected a whole number >= 1 or 'all', got 0")
def case_data_gen_max_samples_zero(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--max-samples", "0"), protect=[finished_generate(tmp)])


@case("data_gen", r"--max-samples: expected a whole number >= 1 or 'all', got -1")
def case_data_gen_max_samples_negative(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--max-samples=-1"), protect=[finished_generate(tmp)])


@case("data_gen", r"retries must be a whole number >= 0 \(got -1\)")
def case_data_gen_retries_negative(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--retries=-1"), protect=[finished_generate(tmp)])


@case("data_gen", r"timeout must be a positive number of seconds \(got 0.0\)")
def case_data_gen_timeout_zero(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "generate", "--timeout", "0"), protect=[finished_generate(tmp)])


@case("data_gen", r"num_negatives must be a whole number >= 1 \(got 0\)")
def case_data_gen_zero_negatives(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "mine", "--num-negatives", "0"))


@case("data_gen", r"litellm cannot call the model 'notaprovider/xyz'")
def case_data_gen_unknown_model_provider(tmp, assets):
    done = finished_generate(tmp)
    yield Setup(argv=["generate", "--out", str(tmp / "out"), "--model", "notaprovider/xyz", "--tasks",
                      "Code Summary Retrieval"], protect=[done])


@case("data_gen", r"generate: none of \d+ calls to openai/stub at http://127\.0\.0\.1:\d+/v1 succeeded \(connection")
def case_data_gen_server_down(tmp, assets):
    one_function_corpus(tmp)
    yield Setup(argv=data_gen_argv(tmp, "generate", "--retries", "0"))


@case("data_gen", r"corpus source .*/nowhere does not exist")
def case_data_gen_missing_corpus(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(tmp / "nowhere")))


@case("data_gen", r"the corpus is empty after filtering")
def case_data_gen_corpus_without_code(tmp, assets):
    (tmp / "docs").mkdir()
    (tmp / "docs" / "README.md").write_text("# only prose here")
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(tmp / "docs")))


@case("data_gen", r"unknown language\(s\) \['Klingon'\]")
def case_data_gen_unknown_language(tmp, assets):
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(code_corpus(tmp)), "--languages", "Klingon"))


@case("data_gen", r"unknown CodeR-Pile task 'Code Sumary Retrieval'; did you mean \['Code Summary Retrieval'")
def case_data_gen_unknown_task(tmp, assets):
    out = one_function_corpus(tmp)
    yield Setup(argv=["generate", "--out", str(out), "--model", "openai/stub", "--api-base", dead_api_base(),
                      "--tasks", "Code Sumary Retrieval"])


@case("data_gen", r"--out .* is a file; pass a folder")
def case_data_gen_out_is_a_file(tmp, assets):
    (tmp / "out").write_text("a file")
    yield Setup(argv=data_gen_argv(tmp, "corpus", "--corpus", str(code_corpus(tmp))), protect=[tmp / "out"])


@case("data_gen", r"annotated\.jsonl does not exist: run the stage that writes it first")
def case_data_gen_stage_out_of_order(tmp, assets):
    (tmp / "out").mkdir()
    yield Setup(argv=data_gen_argv(tmp, "mine"))


@case("data_gen", r"is in use by another data_gen run \(pid \d+")
def case_data_gen_second_run_on_the_same_folder(tmp, assets):
    from st_code.locking import FolderLock

    done = finished_generate(tmp)
    with FolderLock(tmp / "out", "data_gen run", log=lambda _: None):
        yield Setup(argv=data_gen_argv(tmp, "generate"), protect=[done])


@case("data_gen", r"tasks\.yaml: expected a YAML list of task entries")
def case_data_gen_bad_task_file(tmp, assets):
    (tmp / "tasks.yaml").write_text("name: not a list\n")
    yield Setup(argv=data_gen_argv(tmp, "generate", "--task-file", str(tmp / "tasks.yaml")))

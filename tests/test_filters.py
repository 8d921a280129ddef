"""Stage-3 difficulty filters: a real embedder, and an LLM judge over a real local HTTP server."""

from __future__ import annotations

import pytest
from sentence_transformers import SentenceTransformer

from st_code.data.records import Sample
from st_code.llm.difficulty import parse_judgement
from st_code.training.filters import difficulty_filter, embedder_topk_filter, llm_judge_filter
from tests.openai_stub import OpenAIStub


def test_embedder_topk_drops_only_easy_samples(minilm_path):
    model = SentenceTransformer(minilm_path, device="cpu")
    easy = [Sample(f"how to {w} a list in python", f"def {w}_list(items):\n    return {w}(items)", task="t")
            for w in ("sort", "reverse", "sum", "shuffle")]
    # Its own positive is terse, while another sample's positive (reverse_list) looks like a better match:
    # the reference model does not rank it first, so it is a hard sample and stays.
    hard = Sample("reverse the order of a python list", "def f(a):\n    return a[::-1]", task="t")
    kept, report = embedder_topk_filter(easy + [hard], model, k=1)
    assert kept == [hard]
    assert report.dropped == 4 and report.detail == {"too_easy": 4}
    assert embedder_topk_filter(easy + [hard], model, k=5)[0] == []  # k = group size drops everything


def test_the_topk_filter_drops_exactly_what_the_dense_ranking_drops(tiny_qwen_path):
    """The faiss top-k search (chunked queries) against the dense N x N ranking it replaced, on 3000 rows
    in three groups: the same rows kept, for k = 1 and k = 3 (a tiny random decoder: the ranking's
    arithmetic is what is compared, not its quality)."""
    import random

    import numpy as np

    import st_code

    model = st_code.build_model(tiny_qwen_path, pooling="mean", device="cpu", max_seq_length=24)
    rng = random.Random(0)
    verbs, nouns = ["sort", "parse", "merge", "count", "read", "write", "split", "join"], \
        ["list", "file", "dict", "string", "tree", "graph", "queue", "matrix", "json", "csv"]
    samples = []
    for i in range(3000):
        verb, noun, other = rng.choice(verbs), rng.choice(nouns), rng.choice(nouns)
        samples.append(Sample(f"{verb} a {noun} of {other}s", f"def {verb}_{noun}_{i}(x):\n    return {other}(x, {i})",
                              task="t", code_language=["Python", "Go", "Java"][i % 3]))

    groups = {}
    for group in sorted({s.group for s in samples}):
        rows = [s for s in samples if s.group == group]
        q = model.encode([s.query for s in rows], normalize_embeddings=True, convert_to_numpy=True)
        d = model.encode([s.positive for s in rows], normalize_embeddings=True, convert_to_numpy=True)
        scores = q @ d.T
        groups[group] = (rows, (scores > np.diag(scores)[:, None]).sum(axis=1))  # how many beat its own

    def dense(k):
        return sorted(s.positive for rows, rank in groups.values() for s, r in zip(rows, rank) if r >= k)

    for k in (1, 3):
        kept, report = embedder_topk_filter(samples, model, k=k, chunk=700)
        assert sorted(s.positive for s in kept) == dense(k)
        assert 0 < report.kept < len(samples)


@pytest.mark.parametrize(("text", "label"), [
    ("Yes, medium - needs some thought", "medium"), ('"Yes, hard"', "hard"), ("yes, simple.", "simple"),
    ("No, unrelated", "no"), ("<think>hmm</think>Yes, hard", "hard"), ("Maybe", None), ("", None),
])
def test_parse_judgement(text, label):
    assert parse_judgement(text) == label


def test_llm_judge_keeps_medium_and_hard_over_http():
    answers = {"alpha": "Yes, simple", "beta": "Yes, medium because", "gamma": "Yes, hard", "delta": "No",
               "epsilon": "I cannot say"}

    def answer(prompt: str):
        if "zeta" in prompt:
            return (400, "bad request")  # a failing call is counted, never silently kept
        return next(text for key, text in answers.items() if f"Query:\n{key}" in prompt)

    samples = [Sample(key, f"doc for {key}", task="Code Summary Retrieval") for key in [*answers, "zeta"]]
    with OpenAIStub(answer) as server:
        kept, report = llm_judge_filter(samples, {"Code Summary Retrieval": "Given code, retrieve its summary."},
                                        llm="openai/judge", api_base=server.api_base, concurrency=4, timeout=10)
        assert "Given code, retrieve its summary." in server.requests[0]  # Table 17 prompt with the instruction
    assert [s.query for s in kept] == ["beta", "gamma"]
    assert report.detail == {"simple": 1, "medium": 1, "hard": 1, "no": 1, "error": 2, "asked_llm": 6, "rejudged": 0}


def test_llm_judge_asks_only_about_rows_without_a_label():
    """data_gen already labelled its rows (Table 17): those labels decide, the LLM judges the rest."""
    labelled = [Sample(f"known {label}", "doc", task="Code Summary Retrieval", difficulty=label)
                for label in ("simple", "medium", "hard", "no")]
    fresh = Sample("beta", "doc for beta", task="Code Summary Retrieval")
    with OpenAIStub(lambda prompt: "Yes, hard") as server:
        kept, report = llm_judge_filter([*labelled, fresh], {}, llm="openai/judge", api_base=server.api_base)
        assert len(server.requests) == 1 and "Query:\nbeta" in server.requests[0]
    assert [s.query for s in kept] == ["known medium", "known hard", "beta"]
    assert report.detail["asked_llm"] == 1


def test_rejudge_asks_again_about_labels_another_model_gave(tmp_path):
    """CodeR re-judged stage 3 with GPT-4o-mini: labels from another or an unknown model are asked again,
    the judge's own are kept; an answer in the journal belongs to the model that gave it."""
    rows = [Sample("by another", "doc 1", task="Code Summary Retrieval", difficulty="simple", difficulty_model="openai/big"),
            Sample("unknown model", "doc 2", task="Code Summary Retrieval", difficulty="hard"),
            Sample("by the judge", "doc 3", task="Code Summary Retrieval", difficulty="no", difficulty_model="openai/judge")]
    with OpenAIStub(lambda prompt: "Yes, medium") as server:
        kept, report = llm_judge_filter(rows, {}, llm="openai/judge", api_base=server.api_base, rejudge=True,
                                        journal=tmp_path / "judge.jsonl")
        assert sorted(r.split("Query:\n")[1].split("\n")[0] for r in server.requests) == ["by another", "unknown model"]
        assert [s.query for s in kept] == ["by another", "unknown model"]  # re-labelled medium; "no" stays dropped
        assert report.detail == {"medium": 2, "no": 1, "asked_llm": 2, "rejudged": 2}
        llm_judge_filter(rows, {}, llm="openai/other", api_base=server.api_base, rejudge=True,
                         journal=tmp_path / "judge.jsonl")
        assert len(server.requests) == 5  # another judge's answers are not reused


def test_difficulty_labels_decide_without_an_llm():
    rows = [Sample(f"q{i}", "d", difficulty=label) for i, label in enumerate(["simple", "medium", "hard", "no", None])]
    kept, report = difficulty_filter(rows, ("medium", "hard"), unlabeled="keep")
    assert [s.query for s in kept] == ["q1", "q2", "q4"]
    assert report.detail == {"simple": 1, "medium": 1, "hard": 1, "no": 1, "unlabeled": 1}
    kept, _ = difficulty_filter(rows, ("medium", "hard"), unlabeled="drop")
    assert [s.query for s in kept] == ["q1", "q2"]


def test_llm_judge_journals_its_answers_and_fails_loudly_when_unreachable(tmp_path):
    """A rerun asks nothing twice; a judge that no call reaches stops the run instead of dropping every row."""
    import socket

    from st_code.errors import ServiceUnreachable

    rows = [Sample(f"q{i}", f"doc {i}", task="Code Summary Retrieval") for i in range(3)]
    with OpenAIStub(lambda prompt: "Yes, medium") as server:
        for _ in range(2):
            kept, _ = llm_judge_filter(rows, {}, llm="openai/judge", api_base=server.api_base,
                                       journal=tmp_path / "judge.jsonl")
        assert len(server.requests) == 3 and len(kept) == 3
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(ServiceUnreachable, match=r"none of 3 calls to openai/judge at http://127\.0\.0\.1:\d+/v1"):
        llm_judge_filter(rows, {}, llm="openai/judge", api_base=dead, retries=0, timeout=5)

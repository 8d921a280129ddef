"""The optional LLM stage of code search, against a real OpenAI-compatible HTTP server on 127.0.0.1
(tests/openai_stub.py: real sockets through the project's LLM client, scripted answers)."""

from __future__ import annotations

import json
import re

import pytest

from st_code.errors import UsageError
from st_code.search import CodeSearcher
from st_code.search.llm_rerank import LLMReranker, candidate_text, parse_order
from st_code.search.rerank import make_reranker
from tests.openai_stub import OpenAIStub


def _paths(prompt: str) -> list[str]:
    return re.findall(r"^\[\d+\] (\S+)", prompt, re.MULTILINE)


def test_answers_are_parsed_leniently():
    assert parse_order("[3, 1, 2]", 3) == [2, 0, 1]
    assert parse_order("Ranking: [2, 2, 9, 1]\nbecause...", 3) == [1, 0]  # repeats and unknown numbers dropped
    assert parse_order("3, then 1", 3) == [2, 0]  # no list: the numbers in the text
    assert parse_order("none of them", 3) is None and parse_order("[]", 3) is None
    unit = {"path": "mux.go", "symbol": "Mux.Route", "text": "\n".join(f"line {i}" for i in range(40))}
    shown = candidate_text(4, unit)
    assert shown.startswith("[4] mux.go Mux.Route\nline 0") and shown.endswith("line 29\n...")


def test_the_head_follows_the_model_and_a_failure_keeps_the_ranking(chi_index, search_minilm):
    def reverse(prompt: str):  # the model's answer: the candidates it was shown, last first
        if "CORS" in prompt:
            return "I cannot rank these."
        if "timeout" in prompt:
            return (500, "overloaded")
        return json.dumps(list(range(len(_paths(prompt)), 0, -1)))

    plain = CodeSearcher(chi_index, model=search_minilm[0])
    with OpenAIStub(reverse) as server:
        reranker = LLMReranker("openai/stub", candidates=3, api_base=server.api_base, retries=0)
        searcher = CodeSearcher(chi_index, model=search_minilm[0], reranker=reranker)
        queries = ["compress response bodies with gzip", "CORS headers", "request timeout"]
        reranked = searcher.search(queries, k=5)
        reranker.close()
    before = [plain._ranked(q, plain.embed_queries([q])[0], 10, False) for q in queries]
    head = [(u["path"], u["start_line"]) for u, _, _ in before[0][:3]]
    assert [(h.path, h.start_line) for h in reranked[0][:3]] == head[::-1]
    assert [(h.path, h.start_line) for h in reranked[0][3:5]] == [(u["path"], u["start_line"])
                                                                   for u, _, _ in before[0][3:5]]
    assert reranked[0][2].score > reranked[0][3].score
    for hits, ranked in zip(reranked[1:], before[1:]):  # malformed answer, HTTP 500: the ranking's order
        assert [(h.path, h.start_line) for h in hits] == [(u["path"], u["start_line"]) for u, _, _ in ranked[:5]]
    assert reranker.failures == 2 and len(server.requests) == 3
    assert "Query: compress response bodies with gzip" in server.requests[0]


def test_the_command_line_takes_an_llm_reranker(chi_index, capsys):
    from st_code.cli import main

    with OpenAIStub(lambda prompt: "[2, 1]") as server:
        assert main(["search", str(chi_index), "Router", "--json", "-k", "3", "--rerank", "llm:openai/stub",
                     "--rerank-api-base", server.api_base, "--rerank-candidates", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["score"] for h in hits[:2]] == [2.0, 1.0] and len(server.requests) == 1
    assert main(["search", str(chi_index), "Router", "--rerank-api-base", "http://127.0.0.1:9/v1"]) == 2
    assert "--rerank-api-base goes with --rerank llm:MODEL" in capsys.readouterr().err


def test_bad_reranker_settings_are_refused(tmp_path):
    from st_code.search.mcp_server import RepositorySearch

    with pytest.raises(UsageError, match="--rerank-api-base goes with --rerank llm:MODEL"):
        RepositorySearch(tmp_path, rerank_api_base="http://127.0.0.1:9/v1")
    with pytest.raises(UsageError, match="needs a model name"):
        make_reranker("llm:")
    with pytest.raises(UsageError, match="--rerank-candidates must be a whole number >= 1"):
        LLMReranker("openai/stub", candidates=0)
    with pytest.raises(UsageError, match="--rerank-api-base is for an LLM reranker"):
        make_reranker("BAAI/bge-reranker-base", api_base="http://127.0.0.1:9/v1")

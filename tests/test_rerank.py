"""The optional cross-encoder stage of code search, with a real sentence-transformers CrossEncoder.

No trained reranker ships in a package, so the cross-encoder here is the packaged MiniLM with a fresh
one-logit head, saved and loaded as a user's would be: its order is arbitrary, which is what lets the tests
see that the head of the results follows it and nothing else does."""

from __future__ import annotations

import json

import pytest

from st_code.errors import UsageError
from st_code.search import CodeSearcher
from st_code.search.rerank import CrossEncoderReranker, pair_text


@pytest.fixture(scope="module")
def cross_encoder_folder(tmp_path_factory, minilm_path):
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("reranker") / "cross-encoder"
    CrossEncoder(minilm_path, num_labels=1, device="cpu").save(str(folder))
    return str(folder)


def test_the_head_follows_the_cross_encoder_and_the_rest_keeps_its_order(chi_index, search_minilm,
                                                                          cross_encoder_folder):
    reranker = CrossEncoderReranker(cross_encoder_folder, candidates=3, device="cpu")
    plain = CodeSearcher(chi_index, model=search_minilm[0])
    reranked = CodeSearcher(chi_index, model=search_minilm[0], reranker=reranker)
    query = "compress response bodies with gzip"
    before = plain._ranked(query, plain.embed_queries([query])[0], 10, False)
    expected = reranker.model.predict([(query, pair_text(unit)) for unit, _, _ in before[:3]])
    hits = reranked.search([query], k=5)[0]
    head = sorted(zip(expected.tolist(), [unit["path"] for unit, _, _ in before[:3]]), reverse=True)
    assert [(round(h.score, 5), h.path) for h in hits[:3]] == [(round(s, 5), p) for s, p in head]
    assert [h.path for h in hits[3:5]] == [unit["path"] for unit, _, _ in before[3:5]]  # the rest: as ranked
    assert hits[3].score < hits[2].score  # below the head
    cosines = {(unit["path"], unit["start_line"]): cosine for unit, _, cosine in before}
    assert all(h.similarity == pytest.approx(cosines[h.path, h.start_line]) for h in hits)  # the cosine stays a cosine


def test_the_command_line_reranks(chi_index, cross_encoder_folder, capsys):
    from st_code.cli import main

    assert main(["search", str(chi_index), "Router", "--json", "-k", "3", "--rerank", cross_encoder_folder,
                 "--rerank-candidates", "2", "--mode", "dense"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["hits"]) == 3 and answer["hits"][0]["score"] > answer["hits"][2]["score"]


def test_a_missing_cross_encoder_is_refused_with_the_fix(tmp_path):
    with pytest.raises(UsageError, match="--rerank .*no cross-encoder could be loaded .* a local sentence-transformers "
                                         "CrossEncoder folder or a hub id"):
        CrossEncoderReranker(str(tmp_path / "nowhere"), device="cpu")
    with pytest.raises(UsageError, match="--rerank-candidates must be a whole number >= 1"):
        CrossEncoderReranker(object(), candidates=0)


def test_the_mcp_server_state_reranks_its_searches(chi_index, search_minilm, cross_encoder_folder):
    """``st-code mcp REPO --rerank CE``: the tools' search gives what ``st-code search --rerank`` gives."""
    from st_code.search.manifest import read_manifest
    from st_code.search.mcp_server import RepositorySearch

    state = RepositorySearch(read_manifest(chi_index)["root"], index=chi_index, rerank=cross_encoder_folder,
                             device="cpu")
    served = state.search("compress response bodies with gzip", k=3)
    reranker = CrossEncoderReranker(cross_encoder_folder, device="cpu")
    searcher = CodeSearcher(chi_index, model=search_minilm[0], reranker=reranker)
    direct = searcher.search(["compress response bodies with gzip"], k=3)[0]
    assert [(h["path"], h["score"]) for h in served] == [(h.path, round(h.score, 4)) for h in direct]

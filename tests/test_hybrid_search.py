"""Hybrid code search: BM25 over code-aware tokens beside the vectors, fused and ranked, on repositories
written here with the packaged MiniLM, real faiss and real bm25s."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from st_code.errors import UsageError
from st_code.search import CodeSearcher
from st_code.search.lexical import LexicalIndex, code_tokens, query_tokens
from st_code.search.ranking import (RankingWeights, fuse, is_auxiliary, path_word_share, query_words, rank,
                                   symbol_query)

ROUTER = '''package chi

// Router consists of the core routing methods used by chi's Mux.
type Router interface {
	Handle(pattern string, h Handler)
	Route(pattern string, fn func(r Router)) Router
	Mount(pattern string, h Handler)
}
'''
MUX = '''package chi

// Mux is a simple HTTP route multiplexer that parses a request path,
// records any URL params, and executes an end handler.
type Mux struct {
	handler Handler
	tree    *node
}

// Route creates a new Mux and mounts it along the pattern as a subrouter.
func (mx *Mux) Route(pattern string, fn func(r Router)) Router {
	subRouter := NewRouter()
	fn(subRouter)
	mx.Mount(pattern, subRouter)
	return subRouter
}
'''
COMPRESS = '''package middleware

// Compress is a middleware that compresses response bodies of the given content types
// to a data format based on the Accept-Encoding request header, using gzip or deflate.
func Compress(level int, types ...string) func(next Handler) Handler {
	encoder := newCompressor(level, types...)
	return encoder.Handler
}
'''
COMPRESS_TEST = '''package middleware

// TestCompress checks that gzip response compression middleware compresses the body.
func TestCompress(t *testing.T) {
	r := NewRouter()
	r.Use(Compress(5, "text/html"))
	check(t, r, "gzip")
}
'''
SOURCES = {"chi.go": ROUTER, "mux.go": MUX, "middleware/compress.go": COMPRESS,
           "middleware/compress_test.go": COMPRESS_TEST,
           "examples/router/main.go": "package main\n\n// articleRouter routes articles.\nfunc articleRouter() Router {\n"
                                      "\tr := NewRouter()\n\treturn r\n}\n"}


def test_code_tokens_keep_identifiers_whole_and_split_them():
    assert code_tokens("parseHTTPHeader read_file") == ["parsehttpheader", "parse", "http", "header",
                                                       "read_file", "read", "file"]
    assert query_tokens("how are routes registered") == ["routes", "registered"]
    assert query_tokens("how is it") == ["how", "is", "it"]  # nothing but function words: keep them


def test_a_saved_bm25_index_scores_as_the_built_one(tmp_path):
    units = [{"path": "mux.go", "symbol": "Mux.Route", "text": "func (mx *Mux) Route() Router {}"},
             {"path": "tree.go", "symbol": "node", "text": "type node struct {}"},
             {"path": "empty.go", "symbol": "", "text": ""}]
    built = LexicalIndex.build(units)
    built.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    for query in ("Router", "tree node", "nothing here"):
        np.testing.assert_allclose(loaded.scores(query), built.scores(query))
    assert built.scores("Router")[0] > 0 and built.scores("Router")[1:].tolist() == [0, 0]
    assert loaded.named("route") == [0] and loaded.named("Node") == [1] and loaded.named("x") == []


def test_fusion_and_ranking_by_hand():
    weights = RankingWeights()
    dense, lexical = np.array([0.9, 0.5, 0.1]), np.array([0.0, 4.0, 2.0])
    np.testing.assert_allclose(fuse(dense, lexical, weights), [0.7, 0.7 * 0.5 + 0.3, 0.3 * 0.5])
    rrf = fuse(dense, lexical, RankingWeights(fusion="rrf"))
    np.testing.assert_allclose(rrf, [1 / 61, 1 / 62 + 1 / 61, 1 / 63 + 1 / 62])
    assert symbol_query("Mux.Route") == "Mux.Route" and symbol_query("fmt::format") == "fmt::format"
    assert symbol_query("route a request") is None
    assert is_auxiliary("middleware/compress_test.go") and is_auxiliary("_examples/rest/main.go")
    assert is_auxiliary("src/__tests__/a.spec.ts") and not is_auxiliary("src/testament.py")
    units = [{"path": "a_test.go", "symbol": "TestRouter", "start_line": 1, "end_line": 20},
             {"path": "chi.go", "symbol": "Router", "start_line": 1, "end_line": 20},
             {"path": "mux.go", "symbol": "Mux.Route", "start_line": 1, "end_line": 20},
             {"path": "mux.go", "symbol": "Mux.Mount", "start_line": 30, "end_line": 50}]
    order = [i for i, _ in rank("Router", units, np.array([0.9, 0.5, 0.6, 0.55]), np.array([5.0, 3.0, 1.0, 0.0]))]
    assert order[0] == 1  # the definition the identifier names, above a test that scores higher
    window = [{"path": "types.ts", "symbol": "", "kind": "module", "start_line": 1, "end_line": 30,
               "text": "import { x } from './x'\n\nexport type inferProcedureInput<T> = T['_def']['input']\n"},
              {"path": "extract/mod.rs", "symbol": "", "kind": "module", "start_line": 1, "end_line": 30,
               "text": "pub use axum_core::extract::{FromRequest, FromRequestParts};\n"},
              {"path": "form.rs", "symbol": "Form.from_request", "kind": "method", "start_line": 1, "end_line": 30,
               "text": "impl<S> FromRequest<S> for Form<T> {\n    fn from_request() {}\n}\n"}]
    for query, first in (("inferProcedureInput", 0), ("FromRequest", 1)):  # a type alias in a window; a re-export
        assert rank(query, window, np.array([0.1, 0.5, 0.5]), np.array([1.0, 2.0, 2.0]))[0][0] == first
    others = [{"path": f"other{i}.go", "symbol": f"f{i}", "start_line": 1, "end_line": 20} for i in range(10)]
    dense = np.array([0.2, 0.8, 0.9, 0.85] + [0.1] * 10)
    order = [i for i, _ in rank("routing", units + others, dense, np.zeros(14))]
    assert order[:2] == [2, 1]  # a second unit of mux.go yields to the next file



def test_a_type_name_finds_the_type_before_its_constructor_and_its_partial_files():
    """C#: ``Serializer`` names the class in Serializer.cs, not its constructor or Serializer.Json.cs."""
    units = [{"path": "src/Serializer.NonGeneric.cs", "symbol": "Ns.Serializer.Serializer", "kind": "method",
              "start_line": 20, "end_line": 30},
             {"path": "src/Serializer.Json.cs", "symbol": "Ns.Serializer", "kind": "class", "start_line": 1,
              "end_line": 20},
             {"path": "src/Serializer.cs", "symbol": "Ns.Serializer", "kind": "class", "start_line": 1,
              "end_line": 20}]
    order = [i for i, _ in rank("Serializer", units, np.array([0.9, 0.7, 0.68]), np.array([3.0, 2.1, 2.0]))]
    assert order == [2, 1, 0]

def test_a_question_whose_words_name_a_file_lifts_it():
    words = query_words("how are connections pooled by the TCP connector")
    assert words == {"connection", "pooled", "tcp", "connector"}  # no function words, singular
    assert path_word_share(words, "aiohttp/tcp_connector.py") == 0.5
    assert path_word_share(words, "aiohttp/client.py") == 0.0
    assert path_word_share(query_words("how routes are matched"), "router.go") == 0.5  # route: a prefix of router
    assert path_word_share(query_words("middleware"), "chi/middleware/strip.go") == 1.0  # the folder counts
    assert path_word_share(query_words("cors"), "corsair.go") == 0.0  # prefixes of four letters or more only
    units = [{"path": "client.py", "symbol": "Client.request", "start_line": 1, "end_line": 20},
             {"path": "connector.py", "symbol": "Pool.acquire", "start_line": 1, "end_line": 20},
             {"path": "web.py", "symbol": "serve", "start_line": 1, "end_line": 20}]
    dense, lexical = np.array([0.62, 0.6, 0.1]), np.array([2.0, 1.9, 0.1])
    assert [i for i, _ in rank("TCP connector pooling", units, dense, lexical)] == [1, 0, 2]
    off = RankingWeights(path_words=0.0)
    assert [i for i, _ in rank("TCP connector pooling", units, dense, lexical, off)] == [0, 1, 2]
    assert [i for i, _ in rank("Client", units, dense, lexical)][0] == 0  # identifier queries: names decide


def test_hybrid_finds_definitions_and_keeps_tests_below(chi_index, search_minilm):
    hybrid = CodeSearcher(chi_index, model=search_minilm[0])
    dense = CodeSearcher(chi_index, model=search_minilm[0], mode="dense")
    router = hybrid.search(["Router"], k=3)[0]
    assert (router[0].path, router[0].symbol) == ("chi.go", "Router")
    query = hybrid.embed_queries(["Router"])[0]  # the cosine to threshold, beside the ranked score
    chi = next(i for i, u in enumerate(hybrid.units(range(len(hybrid.offsets)))) if u["symbol"] == "Router")
    assert router[0].similarity == pytest.approx(float(np.asarray(hybrid.vectors[chi]) @ query), abs=1e-5)
    assert router[0].to_dict()["similarity"] == pytest.approx(router[0].similarity, abs=1e-5)
    gzip = hybrid.search(["gzip response compression middleware"], k=5)[0]
    assert gzip[0].path == "middleware/compress.go"
    assert [h.path for h in gzip].index("middleware/compress_test.go") > 0
    asks = hybrid.search(["test of the gzip compression"], k=1)[0]
    assert asks[0].path == "middleware/compress_test.go"  # asked for, a test is not held back
    # dense alone is the vectors' cosine order, as before hybrid search existed
    query = dense.embed_queries(["Router"])
    rows, scores = dense.nearest(query, 3)
    assert [h.score for h in dense.search(["Router"], k=3)[0]] == pytest.approx(scores[0].tolist())
    lexical = CodeSearcher(chi_index, model=search_minilm[0], mode="lexical")
    found = lexical.search(["Compress"], k=1)[0][0]
    assert found.symbol == "Compress" and found.similarity is None and "similarity" not in found.to_dict()


def test_per_file_gives_one_hit_per_file(chi_index, search_minilm):
    searcher = CodeSearcher(chi_index, model=search_minilm[0])
    hits = searcher.search(["Mux route subrouter"], k=10, per_file=True)[0]
    paths = [h.path for h in hits]
    assert len(paths) == len(set(paths)) == len(SOURCES)
    with pytest.raises(UsageError, match="--mode 'fuzzy'"):
        CodeSearcher(chi_index, model=search_minilm[0], mode="fuzzy")
    with pytest.raises(UsageError, match="--fusion"):
        CodeSearcher(chi_index, model=search_minilm[0], fusion="max")


def test_an_index_from_before_hybrid_search_opens_and_update_saves_its_bm25(chi_index, search_minilm, tmp_path):
    """Indexes written before ``lexical/`` existed get their BM25 from units.jsonl on open; the next
    update writes it."""
    from st_code.search import update_index

    old = tmp_path / "old"
    shutil.copytree(chi_index, old)
    shutil.rmtree(old / "lexical")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest.pop("lexical")
    (old / "manifest.json").write_text(json.dumps(manifest))
    fresh = CodeSearcher(chi_index, model=search_minilm[0]).search(["Router", "gzip middleware"], k=4)
    opened = CodeSearcher(old, model=search_minilm[0]).search(["Router", "gzip middleware"], k=4)
    assert [[(h.path, h.symbol) for h in hits] for hits in opened] == [[(h.path, h.symbol) for h in hits]
                                                                         for hits in fresh]
    update_index(old, log=lambda _: None, progress=False)
    assert (old / "lexical" / "symbols.json").is_file()


def test_the_command_line_takes_mode_fusion_and_per_file(chi_index, capsys):
    from st_code.cli import main

    assert main(["search", str(chi_index), "Router", "-k", "2", "--json", "--per-file", "--fusion", "rrf"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["hits"][0]["path"] == "chi.go" and len({h["path"] for h in answer["hits"]}) == 2
    assert main(["search", str(chi_index), "Router", "--mode", "dense", "-k", "1"]) == 0
    assert capsys.readouterr().out.startswith(" 1. ")

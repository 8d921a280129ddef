"""The lexical half of hybrid code search: BM25 (bm25s) over code-aware tokens of each unit.

Dense vectors find what code *does*; a bare name (``Router``, ``HTTPException``) or a rare word is
found better by its letters. Tokens keep an identifier whole and also split it at camelCase and
snake_case (``parseHTTPHeader`` -> ``parsehttpheader parse http header``), lowercased; a unit's tokens are
its path, its symbol (twice: a field boost; a pack's, every member's) and its text. Queries drop English
function words, so "how are routes registered" searches ``routes registered``.

bm25s does the scoring (sparse, numpy only) and the saving: the index lives in ``lexical/`` beside the
vectors, memory-mapped on open. An index built before hybrid search had it is read from its
``units.jsonl`` on open instead (seconds for tens of thousands of units).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from st_code.search.sibling_packs import unit_names

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
#: English words that carry no search meaning in a question about code.
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in into is it its of on or the their then there "
    "these this to under use used uses using via was what when where which while who why with work works".split())
FOLDER = "lexical"
SYMBOLS = "symbols.json"  # a unit's own name (lowercased) -> its rows: a symbol query's definitions


def symbol_key(symbol: str) -> str:
    """``Mux.Route`` / ``fmt::format`` -> ``route`` / ``format``."""
    return re.split(r"[.:]+", symbol)[-1].lower()


def code_tokens(text: str) -> list[str]:
    """Identifiers whole and split at camelCase / snake_case, lowercased."""
    tokens = []
    for word in _IDENTIFIER.findall(text):
        tokens.append(word.lower())
        parts = [p for chunk in word.split("_") for p in _PART.findall(chunk)]
        if len(parts) > 1:
            tokens.extend(p.lower() for p in parts)
    return tokens


def query_tokens(query: str) -> list[str]:
    """A query's tokens less English function words (all of them if nothing else is left)."""
    tokens = code_tokens(query)
    kept = [t for t in tokens if t not in STOPWORDS]
    return kept or tokens


def unit_tokens(unit: dict) -> list[str]:
    """What BM25 reads of a unit: its path, its symbol (a pack's: every member's) twice, its text."""
    symbol = code_tokens(" ".join(unit_names(unit)))
    return code_tokens(unit["path"]) + symbol + symbol + code_tokens(unit["text"])


class LexicalIndex:
    """BM25 over units, by row number (the rows of ``units.jsonl``)."""

    def __init__(self, bm25, symbols: dict[str, list[int]]) -> None:
        self.bm25 = bm25
        self.vocabulary = bm25.vocab_dict
        self.symbols = symbols

    @classmethod
    def build(cls, units: Iterable[dict]) -> "LexicalIndex":
        """Index units in order; tokens become ids as they are read, so only ids are held."""
        import bm25s
        from bm25s.tokenization import Tokenized

        vocabulary: dict[str, int] = {"": 0}  # bm25s' empty token, for units without any
        ids = []
        symbols: dict[str, list[int]] = {}
        for row, unit in enumerate(units):
            ids.append([vocabulary.setdefault(token, len(vocabulary)) for token in unit_tokens(unit)] or [0])
            for name in dict.fromkeys(symbol_key(symbol) for symbol in unit_names(unit)):
                symbols.setdefault(name, []).append(row)
        bm25 = bm25s.BM25()
        bm25.index(Tokenized(ids=ids, vocab=vocabulary), create_empty_token=False, show_progress=False)
        return cls(bm25, symbols)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(Path(folder) / FOLDER), show_progress=False)
        (Path(folder) / FOLDER / SYMBOLS).write_text(json.dumps(self.symbols))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        import bm25s

        bm25 = bm25s.BM25.load(str(Path(folder) / FOLDER), mmap=True, show_progress=False, verbosity=0)
        return cls(bm25, json.loads((Path(folder) / FOLDER / SYMBOLS).read_text()))

    def named(self, name: str) -> list[int]:
        """Rows of the units whose own name (the last part of the symbol) is ``name``, in any case."""
        return self.symbols.get(symbol_key(name), [])

    def scores(self, query: str) -> np.ndarray:
        """Every unit's BM25 score for ``query`` (zeros when no token of it is indexed)."""
        tokens = [t for t in query_tokens(query) if t in self.vocabulary]
        if not tokens:
            return np.zeros(self.bm25.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)


def has_lexical(folder: Path) -> bool:
    return all((Path(folder) / FOLDER / name).is_file() for name in ("params.index.json", SYMBOLS))


__all__ = ["LexicalIndex", "code_tokens", "query_tokens", "unit_tokens", "has_lexical", "symbol_key", "STOPWORDS"]

"""Small sibling units packed into one search unit: the splitter's real output packed, then a real index
(packaged MiniLM, faiss, bm25s) searched for a member's name and for what the pack does."""

from __future__ import annotations

import json

import pytest

from st_code.data.code_units import split_units
from st_code.search import CodeSearcher, build_index, update_index
from st_code.search.file_outlines import outlines
from st_code.search.lexical import LexicalIndex, unit_tokens
from st_code.search.sibling_packs import display_symbol, narrow_to_member, pack_small_units, unit_names
from st_code.search.ranking import _names

POOL = '''"""A pool of connections."""


class Pool:
    """Connections kept open for reuse."""

    def size(self):
        return len(self.items)

    def empty(self):
        return not self.items

    def put(self, connection):
        """Give a connection back."""
        self.items.append(connection)

    def get(self):
        """Take a connection, opening one when none is free."""
        if not self.items:
            return self.open()
        return self.items.pop()

    def open(self):
        """Open a new connection to the server, retrying with backoff until it answers."""
        delay = 0.1
        for attempt in range(10):
            try:
                return connect(self.address)
            except OSError:
                sleep(delay)
                delay *= 2
                if attempt == 9:
                    raise
                log(attempt)
                log(delay)
                log(self.address)
            finally:
                count(attempt)
                count(delay)
        return None


def helper_one():
    return 1


def helper_two():
    return 2
'''


def _packed(text: str = POOL, path: str = "pool.py", **limits) -> list:
    return pack_small_units(split_units(text, "Python", path), text, **limits)


def test_small_methods_of_one_class_pack_and_keep_every_name():
    units = _packed()
    group = next(u for u in units if u.kind == "group" and u.symbol.startswith("Pool."))
    assert [m[0] for m in group.members] == ["Pool.size", "Pool.empty", "Pool.put", "Pool.get"]
    assert all(kind == "method" for _, kind, _, _ in group.members)
    lines = POOL.split("\n")
    assert group.text == "\n".join(lines[group.start_line - 1:group.end_line]).rstrip()
    assert group.start_line == group.members[0][2] and group.end_line == group.members[-1][3]
    # the long method stays alone, and top-level functions pack apart from the class's methods
    assert any(u.symbol == "Pool.open" and u.kind == "method" for u in units)
    helpers = next(u for u in units if u.kind == "group" and not u.symbol.startswith("Pool."))
    assert [m[0] for m in helpers.members] == ["helper_one", "helper_two"]
    # the class itself (short: the whole class) and the module docstring are untouched
    assert any(u.symbol == "Pool" and u.kind == "class" for u in units)


def test_go_methods_pack_by_receiver_and_elixir_clauses_show_their_name_once():
    go = ("package pool\n\ntype Pool struct {\n\titems []Conn\n}\n\n// Size is how many are free.\n"
          "func (p *Pool) Size() int {\n\treturn len(p.items)\n}\n\n"
          "func (p *Pool) Put(c Conn) {\n\tp.items = append(p.items, c)\n}\n\nfunc helper() int {\n\treturn 1\n}\n")
    units = pack_small_units(split_units(go, "Go", "pool.go"), go)
    assert [(u.kind, u.symbol) for u in units] == [("class", "Pool"), ("group", "Pool.Size"), ("function", "helper")]
    assert units[1].start_line == 7 and units[1].text.startswith("// Size is how many are free.")
    elixir = ('defmodule Pool do\n  @doc "Size."\n  def size(%{items: items}), do: length(items)\n'
              '  def size(_), do: 0\n\n  def put(pool, c) do\n    %{pool | items: [c | pool.items]}\n  end\nend\n')
    (group,) = [u for u in pack_small_units(split_units(elixir, "Elixir", "pool.ex"), elixir) if u.kind == "group"]
    row = {**group.__dict__, "members": [list(m) for m in group.members]}
    assert len(group.members) == 3 and display_symbol(row) == "Pool.size, Pool.put"


def test_limits_bound_a_pack_and_a_lone_small_unit_stays_itself():
    units = _packed(max_lines=6)  # room for size + empty only
    group = next(u for u in units if u.kind == "group" and u.symbol.startswith("Pool."))
    assert [m[0] for m in group.members] == ["Pool.size", "Pool.empty"]
    assert group.end_line - group.start_line + 1 <= 6
    plain = split_units(POOL, "Python", "pool.py")
    assert pack_small_units(plain, POOL, member_lines=1) == plain  # nothing small enough: nothing packed
    one = 'def only():\n    return 1\n\n\nx = [\n    1,\n    2,\n]\n'
    assert pack_small_units(split_units(one, "Python", "a.py"), one) == split_units(one, "Python", "a.py")


def test_a_packs_names_reach_bm25_the_symbol_lookup_outlines_and_the_ranking():
    rows = [{**u.__dict__, "members": [list(m) for m in u.members]} for u in _packed()]
    group = next(r for r in rows if r["kind"] == "group" and r["symbol"].startswith("Pool."))
    assert unit_names(group) == ["Pool.size", "Pool.empty", "Pool.put", "Pool.get"]
    assert display_symbol(group) == "Pool.size, Pool.empty, Pool.put, Pool.get"
    assert unit_tokens(group).count("empty") >= 3  # twice as a name, once in the text
    lexical = LexicalIndex.build(rows)
    assert rows.index(group) in lexical.named("get") and rows.index(group) in lexical.named("Pool.empty")
    ((_, outline),) = list(outlines(rows))
    assert "Pool.size, Pool.empty, Pool.put, Pool.get, Pool.open, helper_one, helper_two" in outline
    assert _names(group, "get") == 1.0 and _names(group, "Pool.put") == 1.0 and _names(group, "missing") == 0.0
    # a member named alone: its own lines, kind and text; anything else leaves the pack whole
    get = narrow_to_member(group, "Pool.get")
    assert (get["symbol"], get["kind"]) == ("Pool.get", "method") and "members" not in get
    assert get["text"].startswith("    def get(self):") and get["text"].endswith("return self.items.pop()")
    assert (get["start_line"], get["end_line"]) == tuple(group["members"][3][2:])
    assert narrow_to_member(group, "missing") is group
    old_style = {"path": "a.py", "symbol": "f", "text": "def f(): pass"}  # an index row from before packs
    assert unit_names(old_style) == ["f"] and display_symbol(old_style) == "f"
    assert narrow_to_member(old_style, "f") is old_style


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from st_code.search.index import load_search_model

    return load_search_model(minilm_path)


def test_an_index_stores_packs_and_a_search_for_a_member_shows_its_lines(tmp_path, minilm):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pool.py").write_text(POOL)
    index = tmp_path / "index"
    build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
    rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
    assert sum(1 for r in rows if r["kind"] == "group") == 2
    assert all("members" not in r for r in rows if r["kind"] != "group")  # plain units carry no empty list
    searcher = CodeSearcher(index, model=minilm[0])
    (hit, *_), = searcher.search(["Pool.put"], k=3)
    put = next(m for r in rows if r["kind"] == "group" for m in r["members"] if m[0] == "Pool.put")
    assert (hit.symbol, hit.kind, hit.start_line, hit.end_line) == ("Pool.put", "method", put[2], put[3])
    (first, *_), = searcher.search(["small helper functions returning one and two"], k=3)
    assert first.kind == "group" and first.symbol == "helper_one, helper_two"
    report = update_index(index, log=lambda _: None, progress=False)  # nothing changed: nothing embedded
    assert report.embedded == 0 and report.reused == len(rows)


def test_an_index_from_before_packs_searches_and_an_update_embeds_only_the_packs(tmp_path, minilm, monkeypatch):
    import st_code.search.index as index_module

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pool.py").write_text(POOL)
    index = tmp_path / "index"
    with monkeypatch.context() as patch:  # the splitter as it was: one unit a node
        patch.setattr(index_module, "pack_small_units", lambda units, text: units)
        build_index(repo, index, _loaded=minilm, log=lambda _: None, progress=False)
    old_rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
    assert not any(r["kind"] == "group" for r in old_rows)
    (hit, *_), = CodeSearcher(index, model=minilm[0]).search(["Pool.put"], k=3)
    assert (hit.symbol, hit.kind) == ("Pool.put", "method")
    report = update_index(index, log=lambda _: None, progress=False)
    rows = [json.loads(line) for line in (index / "units.jsonl").read_text().splitlines()]
    assert report.embedded == 2 and report.removed == 6  # two packs in, their six members out as units
    assert report.reused == len(rows) - 2 and sum(1 for r in rows if r["kind"] == "group") == 2

"""The one splitter (st_code.data.code_units) and the repository walk, on files written here."""

from __future__ import annotations

import pytest

from st_code.data.code_units import has_grammar, split_units
from st_code.data.repository import WalkReport, walk_repository

SOURCES = {
    "pkg/util.py": '''import os

X = 1
Y = 2


@cache
def add(a, b):
    """Add two numbers.

    Returns the sum.
    """
    return a + b


class Box:
    """A box."""

    def get(self):
        return self.x
''',
    "web/config.js": '''/**
 * Parse a config file.
 */
export function parseConfig(text) {
  return JSON.parse(text);
}

// Add two numbers.
const add = (a, b) => {
  return a + b;
};
''',
    "web/stack.ts": '''/** A stack. */
export class Stack<T> {
  private items: T[] = [];
  /** Push an item. */
  push(x: T): void {
    this.items.push(x);
  }
}
''',
    "cmd/sum.go": '''package main

// Sum adds numbers.
func Sum(xs []int) int {
	t := 0
	return t
}

// Norm returns the length.
func (p *Point) Norm() int {
	return p.X
}
''',
    "src/lib.rs": '''/// Adds one.
#[inline]
pub fn add_one(x: i32) -> i32 {
    x + 1
}

impl Meter {
    /// Make one.
    fn new() -> Self {
        Meter { a: 1 }
    }
}
''',
    "src/Counter.java": '''package x;

/** A counter. */
public class Counter {
    private int n;

    /** Increment it. */
    public void inc() {
        n++;
    }
}
''',
    "csrc/square.c": '''#include <stdio.h>

/* Compute the square. */
static int square(int x) {
    return x * x;
}
''',
    "csrc/shape.cpp": '''namespace geo {
// The larger of two values.
template <typename T>
T maxOf(T a, T b) {
  return a > b ? a : b;
}
}
int Foo::bar(int x) { return x; }
''',
    "rtl/adder.v": '''// Half adder.
module half_adder(input a, input b, output s, output c);
  assign s = a ^ b;
  assign c = a & b;
endmodule
''',
}

# (path, symbol) -> (kind, first line, last line, doc)
EXPECTED = {
    ("pkg/util.py", "add"): ("function", 7, 13, "Add two numbers.\n\nReturns the sum."),
    ("pkg/util.py", "Box"): ("class", 16, 20, "A box."),
    ("pkg/util.py", "Box.get"): ("method", 19, 20, ""),
    ("web/config.js", "parseConfig"): ("function", 1, 6, "Parse a config file."),
    ("web/config.js", "add"): ("function", 8, 11, "Add two numbers."),
    ("web/stack.ts", "Stack"): ("class", 1, 8, "A stack."),
    ("web/stack.ts", "Stack.push"): ("method", 4, 7, "Push an item."),
    ("cmd/sum.go", "Sum"): ("function", 3, 7, "Sum adds numbers."),
    ("cmd/sum.go", "Point.Norm"): ("method", 9, 12, "Norm returns the length."),
    ("src/lib.rs", "add_one"): ("function", 1, 5, "Adds one."),
    ("src/lib.rs", "Meter.new"): ("method", 8, 11, "Make one."),
    ("src/Counter.java", "Counter"): ("class", 3, 11, "A counter."),
    ("src/Counter.java", "Counter.inc"): ("method", 7, 10, "Increment it."),
    ("csrc/square.c", "square"): ("function", 3, 6, "Compute the square."),
    ("csrc/shape.cpp", "geo.maxOf"): ("function", 2, 6, "The larger of two values."),
    ("csrc/shape.cpp", "Foo::bar"): ("function", 8, 8, ""),
    ("rtl/adder.v", "half_adder"): ("class", 1, 5, "Half adder."),
}


@pytest.fixture
def repo(tmp_path):
    for path, text in SOURCES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_units_per_language_with_their_lines_and_docs(repo):
    report = WalkReport()
    units = {}
    for found in walk_repository(repo, report):
        assert found.text is not None, found
        for unit in split_units(found.text, found.language, found.path):
            units[(unit.path, unit.symbol)] = unit
    assert set(report.per_language) == {"Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C", "C++",
                                        "Verilog"}
    for key, (kind, first, last, doc) in EXPECTED.items():
        unit = units[key]
        assert (unit.kind, unit.start_line, unit.end_line, unit.doc) == (kind, first, last, doc), key
        lines = SOURCES[key[0]].split("\n")
        assert unit.text == "\n".join(lines[first - 1:last]).rstrip(), key  # the text is exactly those lines
    module = units[("pkg/util.py", "")]
    assert (module.kind, module.start_line, module.end_line) == ("module", 1, 4)  # code outside any unit


def test_languages_without_a_grammar_and_long_files_fall_back_to_line_windows():
    assert not has_grammar("Zig") and has_grammar("Verilog")
    zig = "\n".join(f"const x{i} = {i};" for i in range(100))
    windows = split_units(zig, "Zig", "x.zig", window_lines=40)
    assert [(u.kind, u.start_line, u.end_line) for u in windows] == [("window", 1, 40), ("window", 41, 80),
                                                                     ("window", 81, 100)]


def test_a_long_class_keeps_its_head_and_its_methods_stay_whole():
    methods = "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(80))
    text = f'class Big:\n    """Many methods."""\n\n{methods}'
    units = split_units(text, "Python", "big.py", max_class_lines=50)
    head = units[0]
    assert (head.symbol, head.start_line, head.end_line) == ("Big", 1, 2)
    assert [u.symbol for u in units[1:4]] == ["Big.m0", "Big.m1", "Big.m2"]


def test_the_walk_honours_gitignore_and_counts_what_it_skipped(repo):
    (repo / ".gitignore").write_text("*.log\ngenerated/\n!keep.py\n")
    (repo / "generated").mkdir()
    (repo / "generated" / "out.py").write_text("x = 1\n")
    (repo / "web" / ".gitignore").write_text("config.js\n")  # a nested rule
    (repo / "node_modules" / "lib").mkdir(parents=True)
    (repo / "node_modules" / "lib" / "index.js").write_text("module.exports = 1;\n")
    (repo / "app.min.js").write_text("var a=1;")
    (repo / "blob.py").write_bytes(b"\x00\x01" * 10)
    (repo / "latin.c").write_bytes("int caf\xe9;".encode("latin-1"))
    (repo / "gen.go").write_text("// Code generated by protoc. DO NOT EDIT.\npackage x\n")
    (repo / "README.md").write_text("# hi\n")
    report = WalkReport()
    kept = [f.path for f in walk_repository(repo, report) if f.text is not None]
    assert "web/config.js" not in kept and "web/stack.ts" in kept and not any("generated/" in p for p in kept)
    assert report.skipped == {"gitignored": 1, "gitignored_dir": 1, "vendored_or_build_dir": 1, "minified": 1,
                              "binary": 1, "non_utf8": 1, "generated": 1, "not_code": 1}
    assert "skipped: binary 1" in report.line()


@pytest.mark.parametrize("name", ["Client.kt", "Encoder.scala", "Session.swift", "router.ex", "mem.zig", "app.dart"])
def test_the_languages_of_public_search_suites_are_code(tmp_path, name):
    (tmp_path / name).write_text("\n".join(f"line {i} of some code" for i in range(12)))
    report = WalkReport()
    files = [f for f in walk_repository(tmp_path, report) if f.text is not None]
    assert [f.path for f in files] == [name]
    parsed = has_grammar(files[0].language)  # Kotlin, Scala, Swift, Elixir: units; Zig, Dart: line windows
    assert split_units(files[0].text, files[0].language, name)[0].kind == ("module" if parsed else "window")

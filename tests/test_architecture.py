"""The import graph keeps data flowing one way (corpus -> data_gen -> rows on disk -> training ->
saved model -> evaluation), with every part reading and writing through the neutral data layer.
Imports inside functions count as much as those at the top of a module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _ours(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in ("st_code", "data_gen", "recipes", "tests")}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _violations(folder: str, allowed: tuple[str, ...]) -> dict[str, set[str]]:
    found = {}
    for path in _modules(folder):
        bad = {n for n in _ours(_imports(path)) if not n.startswith(allowed) and n != "st_code"}
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


NEUTRAL = ("st_code.errors", "st_code.fingerprint", "st_code.lazy", "st_code.outputs", "st_code.devices")


@pytest.mark.parametrize(("folder", "allowed"), [
    # the data layer: records, readers, the offline data; it knows the task registry and nothing else of ours
    ("st_code/data", ("st_code.data", "st_code.tasks", *NEUTRAL)),
    # one LLM client, journal and Table-17 judgement, for data_gen and the curriculum alike
    ("st_code/llm", ("st_code.llm", *NEUTRAL)),
    # one evaluator (mteb's metrics), for the curriculum's stage scores and st_code.evaluation alike
    ("st_code/retrieval", ("st_code.retrieval", "st_code.data", "st_code.reporting", *NEUTRAL)),
    # evaluation reads saved models and data; it never reaches back into training
    ("st_code/evaluation", ("st_code.evaluation", "st_code.data", "st_code.retrieval", "st_code.reporting",
                            "st_code.model", "st_code.prompts", "st_code.locking", *NEUTRAL)),
    # code search reads repositories through the data layer and embeds with any saved (or exported) model;
    # its optional LLM reranker asks through the shared LLM client; never training
    ("st_code/search", ("st_code.search", "st_code.data", "st_code.retrieval", "st_code.model", "st_code.assets",
                        "st_code.locking", "st_code.tasks", "st_code.export", "st_code.llm", *NEUTRAL)),
    # data_gen writes rows in the data layer's schema through the shared LLM client; it never imports training
    ("data_gen", ("data_gen", "st_code.data", "st_code.llm", "st_code.tasks", "st_code.mining", "st_code.assets",
                  "st_code.locking", *NEUTRAL)),
])
def test_each_part_imports_only_what_is_below_it(folder, allowed):
    assert _violations(folder, allowed) == {}


def test_no_production_code_imports_test_helpers_or_recipes():
    offenders = {}
    for folder in ("st_code", "data_gen", "recipes"):
        for path in _modules(folder):
            if path.name == "testing.py":
                continue  # st_code.testing itself: the tiny models tests and benchmarks use
            bad = {n for n in _ours(_imports(path)) if n.startswith(("st_code.testing", "tests", "recipes"))}
            if bad:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


def test_the_library_never_imports_data_gen():
    assert {str(p.relative_to(ROOT)) for p in _modules("st_code") if any(
        n.startswith("data_gen") for n in _imports(p))} == set()


def test_the_portable_modeling_file_imports_nothing_of_ours():
    """It is copied into saved folders and imported where st-code is not installed."""
    path = ROOT / "st_code" / "modules" / "modeling_st_code.py"
    roots = {name.split(".")[0] for name in _imports(path)}
    assert not _ours(roots)
    import sys

    assert roots - set(sys.stdlib_module_names) <= {"torch", "transformers", "sentence_transformers"}


def _module_graph(folder: str = "st_code") -> dict[str, set[str]]:
    """Each module of ``folder`` -> the modules of ``folder`` it imports (in functions too)."""
    modules = {}
    for path in _modules(folder):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        # a package's own parents are imported by Python anyway; the top package only re-exports lazily
        graph[name] = {m for m in found if m in modules and m != name and not name.startswith(m + ".")
                       and m != folder}
    return graph


def test_no_import_circle():
    """No module reaches itself through imports (a function-level import included): each name lives where
    both sides can use it (e.g. looks_local in assets, saved_type in modules/saved_types)."""
    graph = _module_graph()
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    circles.append(" -> ".join(path + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
    assert circles == []


def _row_folder(row: str) -> str | None:
    """The folder of a module-map row's first path (```st_code/training/config.py``` -> st_code/training)."""
    import re

    found = re.search(r"`((?:st_code|data_gen|recipes)(?:/[\w.]+)*)/[\w.]*`", row)
    return found.group(1) if found else None


def test_the_design_module_map_names_every_module():
    """docs/design.md's module map matches the tree: every module is named there (by its path, or by its
    file name in a row of its folder, or by its folder's own row)."""
    doc = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Module map"):doc.index("## Paper to code")]
    rows = [line for line in table.splitlines() if line.startswith("|")]
    unnamed = []
    for path in _modules("st_code") + _modules("data_gen"):
        relative = path.relative_to(ROOT)
        if path.name in ("__init__.py", "__main__.py"):
            continue
        folder = relative.parent.as_posix()
        named = any(relative.as_posix() in row or (f"`{path.name}`" in row and _row_folder(row) == folder)
                    or (f"`{folder}/`" in row and folder != "st_code") for row in rows)
        if not named:
            unnamed.append(relative.as_posix())
    assert unnamed == []

"""Documented functions from Python source trees (the standard library by default), via ``ast``."""

from __future__ import annotations

import ast
import hashlib
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from st_code.errors import MissingPathError

#: Parts of the standard library that are tests, vendored copies or generated tables, not real code.
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3",
             "ensurepip", "turtledemo", "pydoc_data", "encodings"}


@dataclass(frozen=True)
class PythonFunction:
    """One documented function: where it is, its docstring, and its code without the docstring."""

    module: str
    qualname: str
    docstring: str
    code: str

    @property
    def summary(self) -> str:
        """The docstring's first paragraph, on one line (what CodeSearchNet uses as the query)."""
        return " ".join(self.docstring.strip().split("\n\n")[0].split())

    @property
    def details(self) -> str:
        """The docstring after its first paragraph."""
        parts = self.docstring.strip().split("\n\n", 1)
        return parts[1].strip() if len(parts) == 2 else ""


def stdlib_dir() -> Path:
    """The running interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


def iter_python_files(root: str | Path) -> Iterator[Path]:
    """``.py`` files under ``root`` in a stable order, skipping tests and vendored folders."""
    root = Path(root)
    if not root.is_dir():
        raise MissingPathError(f"code folder {root} does not exist")
    for path in sorted(root.rglob("*.py")):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            yield path


def _strip_docstring(source_lines: list[str], node: ast.AST, doc_node: ast.Expr) -> str:
    start, end = node.lineno, node.end_lineno  # 1-based, inclusive
    first = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else start
    lines = source_lines[first - 1 : end]
    doc_start, doc_end = doc_node.lineno - first, doc_node.end_lineno - first
    kept = lines[:doc_start] + lines[doc_end + 1 :]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def extract_functions(
    path: str | Path,
    min_summary_words: int = 4,
    min_code_lines: int = 3,
    max_code_lines: int = 60,
) -> list[PythonFunction]:
    """Documented functions and methods of one file; unparsable or non-UTF-8 files give ``[]``."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (UnicodeDecodeError, SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    module = path.stem
    found: list[PythonFunction] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(child, clean=True)
                body0 = child.body[0] if child.body else None
                if doc and isinstance(body0, ast.Expr) and isinstance(getattr(body0, "value", None), ast.Constant):
                    code = _strip_docstring(lines, child, body0)
                    n_code = len([ln for ln in code.splitlines() if ln.strip()])
                    summary_words = len(doc.split("\n\n")[0].split())
                    if min_code_lines <= n_code <= max_code_lines and summary_words >= min_summary_words:
                        found.append(PythonFunction(module, prefix + child.name, doc, code))
    visit(tree, "")
    return found


def content_hash(text: str) -> str:
    """Whitespace-insensitive hash used for deduplication."""
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()

"""Files -> code units: the functions, methods and classes of a file, with their doc comments.

One splitter for everyone who needs code in retrieval-sized pieces: ``st-code index`` embeds the
units, data_gen's corpus hands whole functions and classes to its generation prompts, and
``st-code adapt`` pairs docstrings with their code. Parsing is tree-sitter's, through the grammar
wheels the tree-sitter projects publish on PyPI (compiled, nothing downloaded at run time), for the
languages in :mod:`st_code.data.grammars` (Python, JavaScript, TypeScript, Go, Rust, Java, C, C++, C#,
Kotlin, Scala, Swift, Ruby, PHP, Lua, Shell, Elixir, Verilog). Code outside any unit (module-level
statements) and files in other languages are cut into line windows.

A unit's text starts at its leading comments (JSDoc, ``///``, Javadoc, KDoc, a comment above a C function
or a Verilog module) and decorators/attributes (Elixir's ``@doc``/``@spec``), and ``doc`` holds that
comment, the Python docstring or Elixir's ``@doc``, cleaned. Lines are 1-based and inclusive.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import re
from dataclasses import dataclass
from typing import Any

from st_code.data.grammars import (BODIES, FIXED_NAMES, GRAMMARS, SCOPES, Grammar, elixir_doc, elixir_kind,
                                   elixir_name)

#: A class (or struct, trait, interface) longer than this many lines is kept as its head only, up to
#: its first member unit; its methods are units of their own anyway.
MAX_CLASS_LINES = 120
#: Line windows for code outside units and for languages without a grammar.
WINDOW_LINES = 40
#: A window or unit with fewer non-blank lines than this is not worth a vector.
MIN_LINES = 3


@dataclass(frozen=True)
class CodeUnit:
    """One retrieval unit of a file."""

    path: str
    language: str
    kind: str  # function | method | class | module (top-level code) | window (no grammar) | group (search's packs)
    symbol: str  # "Class.method", "function", "" for windows
    start_line: int
    end_line: int
    text: str
    doc: str = ""
    #: a search index's pack of small siblings (:mod:`st_code.search.sibling_packs`): (symbol, kind, start, end) each
    members: tuple[tuple[str, str, int, int], ...] = ()

    @property
    def hash(self) -> str:
        """What the unit says, whatever file or line it sits at: the key that decides re-embedding."""
        return hashlib.sha1(f"{self.language}\0{self.text}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


_NAME_TYPES = ("identifier", "field_identifier", "type_identifier", "property_identifier", "simple_identifier",
               "qualified_identifier", "destructor_name", "operator_name", "name", "constant")
_parsers: dict[str, Any] = {}


def has_grammar(language: str) -> bool:
    """Whether ``language``'s grammar wheel is installed (units), or files fall back to line windows."""
    return _parser(language) is not None


def _parser(language: str):
    if language not in GRAMMARS:
        return None
    if language not in _parsers:
        grammar = GRAMMARS[language]
        try:
            import tree_sitter

            module = importlib.import_module(grammar.module)
            _parsers[language] = tree_sitter.Parser(tree_sitter.Language(getattr(module, grammar.function)()))
        except (ImportError, AttributeError, ValueError):  # wheel missing or built for another tree-sitter
            _parsers[language] = None
    return _parsers[language]


def split_units(text: str, language: str, path: str = "", max_class_lines: int = MAX_CLASS_LINES,
                window_lines: int = WINDOW_LINES) -> list[CodeUnit]:
    """The units of one file, in file order: parsed ones where a grammar exists, windows elsewhere."""
    lines = text.split("\n")
    parser = _parser("TSX" if language == "TypeScript" and path.endswith(".tsx") else language)
    if parser is None:
        return _windows(lines, 0, len(lines), path, language, "window", window_lines)
    grammar = GRAMMARS["TSX" if language == "TypeScript" and path.endswith(".tsx") else language]
    tree = parser.parse(text.encode("utf-8", "surrogatepass"))
    found: list[CodeUnit] = []
    _walk(tree.root_node, grammar, lines, path, language, "", found, max_class_lines)
    covered = [False] * len(lines)
    for unit in found:
        for row in range(unit.start_line - 1, unit.end_line):
            covered[row] = True
    rest: list[CodeUnit] = []
    row = 0
    while row < len(lines):  # module-level code between the units, in windows
        if covered[row]:
            row += 1
            continue
        end = row
        while end < len(lines) and not covered[end]:
            end += 1
        rest.extend(_windows(lines, row, end, path, language, "module", window_lines))
        row = end
    return sorted(found + rest, key=lambda u: (u.start_line, -u.end_line))


def _walk(node, grammar: Grammar, lines: list[str], path: str, language: str, prefix: str,
          found: list[CodeUnit], max_class_lines: int, in_class: bool = False) -> None:
    for child in node.named_children:
        kind = _kind(child, grammar, language)
        if kind is None:
            if child.type in grammar.containers:  # e.g. a Rust impl or C++ namespace: a scope, not a unit
                name = _name(child, language)
                _walk(child, grammar, lines, path, language, f"{prefix}{name}." if name else prefix, found,
                      max_class_lines, child.type not in SCOPES)
            elif child.type in grammar.wrappers or child.type in BODIES:
                _walk(child, grammar, lines, path, language, prefix, found, max_class_lines, in_class)
            continue
        name = _name(child, language)
        if kind == "function" and in_class:
            kind = "method"
        outer = _outer(child, grammar)
        leading = _leading(outer, grammar)  # comments and attributes above it: part of its text and its doc
        start, end = (leading[0] if leading else outer).start_point[0] + 1, outer.end_point[0] + 1
        symbol = f"{prefix}{name}" if name else prefix.rstrip(".")
        doc = _docstring(child) if language == "Python" else _comment_doc(child, leading, grammar, language)
        members: list[CodeUnit] = []
        if child.type in grammar.containers or (language == "Elixir" and kind == "class"):
            _walk(child, grammar, lines, path, language, f"{symbol}.", members, max_class_lines, True)
        if members and end - start + 1 > max_class_lines:  # the head: signature, docstring, fields
            end = max(child.start_point[0] + 1, members[0].start_line - 1)  # its own first line at least
            while end > child.start_point[0] + 1 and not lines[end - 1].strip():
                end -= 1
        body = "\n".join(lines[start - 1:end]).rstrip()
        if sum(1 for line in lines[start - 1:end] if line.strip()) >= 1 and body:
            found.append(CodeUnit(path, language, kind, symbol, start, end, body, doc))
        found.extend(members)


def _kind(node, grammar: Grammar, language: str) -> str | None:
    """The unit kind of a node, or None: the grammar's table, plus ``const f = () => {}`` and Elixir's defs."""
    if language == "Elixir":
        return elixir_kind(node) if node.type == "call" else None
    kind = grammar.units.get(node.type)
    if kind is None and node.type in ("lexical_declaration", "variable_declaration"):
        kind = "function" if _assigned_function(node) else None
    return kind


def _assigned_function(node) -> bool:
    for declarator in node.named_children:
        value = declarator.child_by_field_name("value")
        if value is not None and value.type in ("arrow_function", "function_expression", "function",
                                                "generator_function"):
            return True
    return False


def _outer(node, grammar: Grammar):
    """The node with its wrappers (decorators, export, template)."""
    while node.parent is not None and node.parent.type in grammar.wrappers:
        node = node.parent
    return node


def _leading(outer, grammar: Grammar) -> list:
    """The comments and attributes right above a unit, in file order, with no blank line between.

    A first member's comment can sit before its container's body (Ruby: ``class A`` / ``# doc`` /
    ``body_statement``), so the search goes on from the body's own previous sibling."""
    found: list = []
    start, previous = outer.start_point[0], outer.prev_named_sibling
    if previous is None and outer.parent is not None and outer.parent.type in BODIES \
            and outer.parent.start_point[0] == outer.start_point[0]:
        previous = outer.parent.prev_named_sibling
    while previous is not None and (previous.type in grammar.comments or previous.type in grammar.leading) \
            and start - previous.end_point[0] <= 1:
        found.insert(0, previous)
        start, previous = previous.start_point[0], previous.prev_named_sibling
    return found


def _name(node, language: str) -> str:
    if node.type in FIXED_NAMES and node.child_by_field_name("name") is None:
        return FIXED_NAMES[node.type]
    if language == "Elixir":
        return elixir_name(node)
    if language == "Go" and node.type == "method_declaration":
        receiver = node.child_by_field_name("receiver")
        kind = re.sub(r"[^\w]", "", _first_type(receiver)) if receiver is not None else ""
        name = node.child_by_field_name("name")
        return f"{kind}.{_text(name)}" if kind else _text(name)
    if language == "Go" and node.type == "type_declaration":
        spec = next((c for c in node.named_children if c.type == "type_spec"), None)
        return _text(spec.child_by_field_name("name")) if spec is not None else ""
    if node.type in ("lexical_declaration", "variable_declaration"):
        return ", ".join(_text(d.child_by_field_name("name")) for d in node.named_children
                         if d.child_by_field_name("name") is not None)
    if node.type == "impl_item":
        return re.sub(r"<.*", "", _text(node.child_by_field_name("type")))
    named = node.child_by_field_name("name")
    if named is not None:
        return _text(named)
    declarator = node.child_by_field_name("declarator")  # C/C++ functions: int *name(args)
    while declarator is not None:
        if declarator.type in _NAME_TYPES:
            return _text(declarator)
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            return next((_text(c) for c in declarator.named_children if c.type in _NAME_TYPES), "")
        declarator = inner
    return _first_identifier(node)


def _first_type(node) -> str:
    for child in node.named_children:
        found = child.child_by_field_name("type")
        if found is not None:
            return _text(found)
    return ""


def _first_identifier(node, depth: int = 3) -> str:
    """Verilog and the like: the first identifier in the node's head."""
    for child in node.named_children:
        if child.type in _NAME_TYPES or child.type.endswith("_identifier"):
            return _text(child)
        if depth and child.type.endswith(("header", "identifier", "_body_declaration", "_declaration")):
            found = _first_identifier(child, depth - 1)
            if found:
                return found
    return ""


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _docstring(node) -> str:
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        return ""
    first = body.named_children[0]
    if first.type != "expression_statement" or not first.named_children or first.named_children[0].type != "string":
        return ""
    raw = _text(first.named_children[0])
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw.strip("\"'rbuRBU")
    return _clean(value if isinstance(value, str) else "")


def _comment_doc(node, leading: list, grammar: Grammar, language: str) -> str:
    """A unit's doc from the nodes above it: its comments, or Elixir's ``@doc`` attribute."""
    if language == "Elixir":
        return _clean(elixir_doc(node, [n for n in leading if n.type in grammar.leading]))
    comments = [_uncomment(_text(n)) for n in leading if n.type in grammar.comments]
    return _clean(_XML_DOC_TAGS.sub("", "\n".join(comments)))


#: C#'s XML doc comments: the tags that wrap prose go, the prose stays.
_XML_DOC_TAGS = re.compile(r"</?(summary|remarks|para|returns|value|example)>")
_COMMENT_MARKS = re.compile(r"^\s*(/\*\*?|\*/|\*(?!/)|///?!?|//!|#|---?(\[\[)?)\s?")


def _uncomment(comment: str) -> str:
    lines = []
    for line in comment.replace("*/", "").split("\n"):
        lines.append(_COMMENT_MARKS.sub("", line).rstrip())
    return "\n".join(lines)


def _clean(text: str) -> str:
    import inspect

    return inspect.cleandoc(text).strip() if text else ""


def _windows(lines: list[str], start: int, end: int, path: str, language: str, kind: str,
             size: int) -> list[CodeUnit]:
    units = []
    for first in range(start, end, size):
        chunk = lines[first:min(first + size, end)]
        while chunk and not chunk[-1].strip():
            chunk = chunk[:-1]
        lead = 0
        while lead < len(chunk) and not chunk[lead].strip():
            lead += 1
        chunk = chunk[lead:]
        if sum(1 for line in chunk if line.strip()) < MIN_LINES:
            continue
        begin = first + lead + 1
        units.append(CodeUnit(path, language, kind, "", begin, begin + len(chunk) - 1, "\n".join(chunk)))
    return units


__all__ = ["CodeUnit", "GRAMMARS", "has_grammar", "split_units", "MAX_CLASS_LINES", "WINDOW_LINES"]

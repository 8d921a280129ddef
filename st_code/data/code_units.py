"""Files -> code units: the functions, methods and classes of a file, with their doc comments.

One splitter for everyone who needs code in retrieval-sized pieces: ``st-code index`` embeds the
units, data_gen's corpus hands whole functions and classes to its generation prompts, and
``st-code adapt`` pairs docstrings with their code. Parsing is tree-sitter's, through the grammar
wheels the tree-sitter project publishes on PyPI (compiled, nothing downloaded at run time), for
Python, JavaScript, TypeScript, Go, Rust, Java, C, C++ and Verilog. Code outside any unit (module-level
statements) and files in other languages are cut into line windows.

A unit's text starts at its leading comments (JSDoc, ``///``, Javadoc, a comment above a C function or a
Verilog module) and decorators/attributes, and ``doc`` holds that comment or the Python docstring,
cleaned. Lines are 1-based and inclusive.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

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
    kind: str  # function | method | class | module (top-level code) | window (no grammar)
    symbol: str  # "Class.method", "function", "" for windows
    start_line: int
    end_line: int
    text: str
    doc: str = ""

    @property
    def hash(self) -> str:
        """What the unit says, whatever file or line it sits at: the key that decides re-embedding."""
        return hashlib.sha1(f"{self.language}\0{self.text}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


@dataclass(frozen=True)
class _Grammar:
    """How one language's syntax tree is read."""

    module: str
    function: str = "language"
    units: dict[str, str] = field(default_factory=dict)  # node type -> kind
    containers: frozenset[str] = frozenset()  # their named children's units are members ("Class.method")
    wrappers: frozenset[str] = frozenset()  # a unit's range grows to these (decorators, export, template)
    comments: frozenset[str] = frozenset({"comment"})
    leading: frozenset[str] = frozenset()  # other leading nodes that belong to the unit (attributes)


_C_LIKE_COMMENTS = frozenset({"comment"})
GRAMMARS: dict[str, _Grammar] = {
    "Python": _Grammar("tree_sitter_python", units={"function_definition": "function", "class_definition": "class"},
                       containers=frozenset({"class_definition"}), wrappers=frozenset({"decorated_definition"})),
    "JavaScript": _Grammar(
        "tree_sitter_javascript",
        units={"function_declaration": "function", "generator_function_declaration": "function",
               "class_declaration": "class", "method_definition": "method"},
        containers=frozenset({"class_declaration", "class"}), wrappers=frozenset({"export_statement"})),
    "TypeScript": _Grammar(
        "tree_sitter_typescript", "language_typescript",
        units={"function_declaration": "function", "generator_function_declaration": "function",
               "class_declaration": "class", "abstract_class_declaration": "class", "method_definition": "method",
               "interface_declaration": "class", "enum_declaration": "class"},
        containers=frozenset({"class_declaration", "abstract_class_declaration"}),
        wrappers=frozenset({"export_statement"})),
    "Go": _Grammar("tree_sitter_go", units={"function_declaration": "function", "method_declaration": "method",
                                            "type_declaration": "class"}),
    "Rust": _Grammar(
        "tree_sitter_rust",
        units={"function_item": "function", "struct_item": "class", "enum_item": "class", "trait_item": "class",
               "macro_definition": "function"},
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        comments=frozenset({"line_comment", "block_comment"}), leading=frozenset({"attribute_item"})),
    "Java": _Grammar(
        "tree_sitter_java",
        units={"class_declaration": "class", "interface_declaration": "class", "enum_declaration": "class",
               "record_declaration": "class", "method_declaration": "method", "constructor_declaration": "method"},
        containers=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
        comments=frozenset({"line_comment", "block_comment"})),
    "C": _Grammar("tree_sitter_c", units={"function_definition": "function", "struct_specifier": "class"}),
    "C++": _Grammar(
        "tree_sitter_cpp",
        units={"function_definition": "function", "class_specifier": "class", "struct_specifier": "class"},
        containers=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
        wrappers=frozenset({"template_declaration"})),
    "Verilog": _Grammar("tree_sitter_verilog", units={"module_declaration": "class", "function_declaration": "function",
                                                      "task_declaration": "function"},
                        containers=frozenset({"module_declaration"})),
}
GRAMMARS["TSX"] = _Grammar("tree_sitter_typescript", "language_tsx", units=GRAMMARS["TypeScript"].units,
                           containers=GRAMMARS["TypeScript"].containers, wrappers=GRAMMARS["TypeScript"].wrappers)
#: Member kinds: a function inside a container is a method.
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


_SCOPES = ("namespace_definition", "mod_item")  # containers whose functions are not methods


def _walk(node, grammar: _Grammar, lines: list[str], path: str, language: str, prefix: str,
          found: list[CodeUnit], max_class_lines: int, in_class: bool = False) -> None:
    for child in node.named_children:
        kind = grammar.units.get(child.type)
        if kind is None and child.type in ("lexical_declaration", "variable_declaration"):
            kind = "function" if _assigned_function(child) else None  # const f = () => {...}
        if kind is None:
            if child.type in grammar.containers:  # e.g. a Rust impl or C++ namespace: a scope, not a unit
                name = _name(child, language)
                _walk(child, grammar, lines, path, language, f"{prefix}{name}." if name else prefix, found,
                      max_class_lines, child.type not in _SCOPES)
            elif child.type in grammar.wrappers or child.type in ("declaration_list", "class_body", "block",
                                                                  "field_declaration_list", "body",
                                                                  "interface_body", "enum_body"):
                _walk(child, grammar, lines, path, language, prefix, found, max_class_lines, in_class)
            continue
        name = _name(child, language)
        if kind == "function" and in_class:
            kind = "method"
        start, end = _extent(child, grammar)
        symbol = f"{prefix}{name}" if name else prefix.rstrip(".")
        doc = _docstring(child) if language == "Python" else _comment_doc(child, grammar)
        members: list[CodeUnit] = []
        if child.type in grammar.containers:
            _walk(child, grammar, lines, path, language, f"{symbol}.", members, max_class_lines, True)
        if members and end - start + 1 > max_class_lines:
            end = max(start, members[0].start_line - 2)  # the head: signature, docstring, fields
        body = "\n".join(lines[start - 1:end]).rstrip()
        if sum(1 for line in lines[start - 1:end] if line.strip()) >= 1 and body:
            found.append(CodeUnit(path, language, kind, symbol, start, end, body, doc))
        found.extend(members)


def _assigned_function(node) -> bool:
    for declarator in node.named_children:
        value = declarator.child_by_field_name("value")
        if value is not None and value.type in ("arrow_function", "function_expression", "function",
                                                "generator_function"):
            return True
    return False


def _extent(node, grammar: _Grammar) -> tuple[int, int]:
    """1-based lines of a unit: its wrappers (decorators, export, template) and leading comments included."""
    outer = node
    while outer.parent is not None and outer.parent.type in grammar.wrappers:
        outer = outer.parent
    start = outer.start_point[0]
    previous = outer.prev_named_sibling
    while previous is not None and (previous.type in grammar.comments or previous.type in grammar.leading) \
            and start - previous.end_point[0] <= 1:
        start = previous.start_point[0]
        previous = previous.prev_named_sibling
    return start + 1, outer.end_point[0] + 1


def _name(node, language: str) -> str:
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


def _comment_doc(node, grammar: _Grammar) -> str:
    outer = node
    while outer.parent is not None and outer.parent.type in grammar.wrappers:
        outer = outer.parent
    comments: list[str] = []
    previous, start = outer.prev_named_sibling, outer.start_point[0]
    while previous is not None and start - previous.end_point[0] <= 1 and (
            previous.type in grammar.comments or previous.type in grammar.leading):
        if previous.type in grammar.comments:
            comments.insert(0, _text(previous))
        start = previous.start_point[0]
        previous = previous.prev_named_sibling
    return _clean("\n".join(_uncomment(c) for c in comments))


_COMMENT_MARKS = re.compile(r"^\s*(/\*\*?|\*/|\*(?!/)|///?!?|//!|#)\s?")


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

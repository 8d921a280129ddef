"""Which tree-sitter nodes are code units, language by language.

The splitter (:mod:`st_code.data.code_units`) walks a syntax tree; this table tells it, for each
language, which node types are units (and of which kind), which hold members (``Class.method``),
which wrap a unit (decorators, ``export``), which comments lead it, and which other nodes belong to its
head (attributes, Elixir's ``@doc``/``@spec``). Grammars are the wheels the tree-sitter projects publish
on PyPI; a language whose wheel is missing falls back to line windows.

Elixir defines everything with macro calls (``defmodule``, ``def``), so its units are ``call`` nodes
picked by :func:`elixir_kind` and named by :func:`elixir_name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_C_STYLE = frozenset({"line_comment", "block_comment", "comment", "multiline_comment"})


@dataclass(frozen=True)
class Grammar:
    """How one language's syntax tree is read."""

    module: str
    function: str = "language"
    units: dict[str, str] = field(default_factory=dict)  # node type -> kind
    containers: frozenset[str] = frozenset()  # their named children's units are members ("Class.method")
    wrappers: frozenset[str] = frozenset()  # a unit's range grows to these (decorators, export, template)
    comments: frozenset[str] = frozenset({"comment"})
    leading: frozenset[str] = frozenset()  # other leading nodes that belong to the unit (attributes)


GRAMMARS: dict[str, Grammar] = {
    "Python": Grammar("tree_sitter_python", units={"function_definition": "function", "class_definition": "class"},
                      containers=frozenset({"class_definition"}), wrappers=frozenset({"decorated_definition"})),
    "JavaScript": Grammar(
        "tree_sitter_javascript",
        units={"function_declaration": "function", "generator_function_declaration": "function",
               "class_declaration": "class", "method_definition": "method"},
        containers=frozenset({"class_declaration", "class"}), wrappers=frozenset({"export_statement"})),
    "TypeScript": Grammar(
        "tree_sitter_typescript", "language_typescript",
        units={"function_declaration": "function", "generator_function_declaration": "function",
               "class_declaration": "class", "abstract_class_declaration": "class", "method_definition": "method",
               "interface_declaration": "class", "enum_declaration": "class"},
        containers=frozenset({"class_declaration", "abstract_class_declaration"}),
        wrappers=frozenset({"export_statement"})),
    "Go": Grammar("tree_sitter_go", units={"function_declaration": "function", "method_declaration": "method",
                                           "type_declaration": "class"}),
    "Rust": Grammar(
        "tree_sitter_rust",
        units={"function_item": "function", "struct_item": "class", "enum_item": "class", "trait_item": "class",
               "macro_definition": "function"},
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        comments=frozenset({"line_comment", "block_comment"}), leading=frozenset({"attribute_item"})),
    "Java": Grammar(
        "tree_sitter_java",
        units={"class_declaration": "class", "interface_declaration": "class", "enum_declaration": "class",
               "record_declaration": "class", "method_declaration": "method", "constructor_declaration": "method"},
        containers=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
        comments=frozenset({"line_comment", "block_comment"})),
    "C": Grammar("tree_sitter_c", units={"function_definition": "function", "struct_specifier": "class"}),
    "C++": Grammar(
        "tree_sitter_cpp",
        units={"function_definition": "function", "class_specifier": "class", "struct_specifier": "class"},
        containers=frozenset({"class_specifier", "struct_specifier", "namespace_definition"}),
        wrappers=frozenset({"template_declaration"})),
    "Verilog": Grammar("tree_sitter_verilog", units={"module_declaration": "class", "function_declaration": "function",
                                                     "task_declaration": "function"},
                       containers=frozenset({"module_declaration"})),
    "C#": Grammar(
        "tree_sitter_c_sharp",
        units={"class_declaration": "class", "struct_declaration": "class", "interface_declaration": "class",
               "record_declaration": "class", "enum_declaration": "class", "method_declaration": "method",
               "constructor_declaration": "method", "local_function_statement": "function"},
        containers=frozenset({"class_declaration", "struct_declaration", "interface_declaration",
                              "record_declaration", "namespace_declaration", "file_scoped_namespace_declaration"}),
        leading=frozenset({"attribute_list"})),
    "Kotlin": Grammar(
        "tree_sitter_kotlin",
        units={"function_declaration": "function", "class_declaration": "class", "object_declaration": "class",
               "companion_object": "class", "secondary_constructor": "method"},
        containers=frozenset({"class_declaration", "object_declaration", "companion_object"}), comments=_C_STYLE),
    "Scala": Grammar(
        "tree_sitter_scala",
        units={"function_definition": "function", "class_definition": "class", "trait_definition": "class",
               "object_definition": "class", "enum_definition": "class"},
        containers=frozenset({"class_definition", "trait_definition", "object_definition", "enum_definition",
                              "package_object"}), comments=_C_STYLE),
    "Swift": Grammar(
        "tree_sitter_swift",
        units={"class_declaration": "class", "protocol_declaration": "class", "function_declaration": "function",
               "init_declaration": "method", "deinit_declaration": "method", "subscript_declaration": "method"},
        containers=frozenset({"class_declaration", "protocol_declaration"}), comments=_C_STYLE),
    "Ruby": Grammar("tree_sitter_ruby", units={"method": "function", "singleton_method": "function",
                                               "class": "class", "module": "class"},
                    containers=frozenset({"class", "module", "singleton_class"})),
    "PHP": Grammar(
        "tree_sitter_php", "language_php",
        units={"function_definition": "function", "method_declaration": "method", "class_declaration": "class",
               "interface_declaration": "class", "trait_declaration": "class", "enum_declaration": "class"},
        containers=frozenset({"class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"}),
        leading=frozenset({"attribute_list"})),
    "Lua": Grammar("tree_sitter_lua", units={"function_declaration": "function"}),
    "Shell": Grammar("tree_sitter_bash", units={"function_definition": "function"}),
    "Elixir": Grammar("tree_sitter_elixir", leading=frozenset({"unary_operator"})),  # see elixir_kind
}
GRAMMARS["TSX"] = Grammar("tree_sitter_typescript", "language_tsx", units=GRAMMARS["TypeScript"].units,
                          containers=GRAMMARS["TypeScript"].containers, wrappers=GRAMMARS["TypeScript"].wrappers)

#: Node types that hold a container's members, walked through on the way to them.
BODIES = frozenset({"declaration_list", "class_body", "block", "field_declaration_list", "body", "interface_body",
                    "enum_body", "body_statement", "template_body", "protocol_body", "enum_class_body", "do_block",
                    "compilation_unit"})
#: Containers whose functions are not methods.
SCOPES = frozenset({"namespace_definition", "mod_item", "namespace_declaration", "file_scoped_namespace_declaration"})
#: Units whose name is their kind of member, not an identifier.
FIXED_NAMES = {"init_declaration": "init", "deinit_declaration": "deinit", "subscript_declaration": "subscript",
               "secondary_constructor": "constructor", "companion_object": "Companion"}

_ELIXIR_KINDS = {"defmodule": "class", "defprotocol": "class", "defimpl": "class", "def": "function",
                 "defp": "function", "defmacro": "function", "defmacrop": "function", "defguard": "function",
                 "defguardp": "function", "defdelegate": "function"}


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def elixir_kind(node) -> str | None:
    """``defmodule X do`` is a class, ``def f(x)`` a function; any other call is no unit."""
    target = node.child_by_field_name("target")
    return _ELIXIR_KINDS.get(_text(target)) if target is not None and target.type == "identifier" else None


def elixir_name(node) -> str:
    """``defmodule Phoenix.Token`` -> ``Phoenix.Token``; ``def sign(a, b) when ...`` -> ``sign``."""
    arguments = next((c for c in node.named_children if c.type == "arguments"), None)
    head = arguments.named_children[0] if arguments is not None and arguments.named_children else None
    while head is not None and head.type == "binary_operator":  # def f(x) when guard
        head = head.child_by_field_name("left")
    if head is not None and head.type == "call":
        head = head.child_by_field_name("target")
    return _text(head) if head is not None and head.type in ("alias", "identifier") else ""


def elixir_doc(node, leading: list) -> str:
    """The ``@doc`` before a function, or the ``@moduledoc`` in a module's body, as text (a string, a
    heredoc or a ``~S`` sigil; ``@doc false`` is no doc)."""
    wanted, attributes = "doc", list(leading)
    if elixir_kind(node) == "class":
        body = next((c for c in node.named_children if c.type == "do_block"), None)
        wanted, attributes = "moduledoc", [c for c in (body.named_children if body is not None else [])
                                           if c.type == "unary_operator"]
    for attribute in attributes:
        call = attribute.named_children[0] if attribute.named_children else None
        if call is None or call.type != "call" or _text(call.child_by_field_name("target")) != wanted:
            continue
        values = [c for c in call.named_children if c.type == "arguments"]
        strings = [s for s in (values[0].named_children if values else []) if s.type in ("string", "sigil")]
        return "".join(_text(part) for part in strings[0].named_children
                       if part.type == "quoted_content") if strings else ""
    return ""

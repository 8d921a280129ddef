"""Small sibling units packed into one search unit, each member's name kept.

A three-line getter embeds to a vector that says little, and a file of twenty such methods fills a
question's top ten with near-duplicates. The index therefore packs consecutive small functions or
methods of one parent (each at most ``member_lines`` long) into one unit of at most ``max_lines``, as
semble packs neighbouring syntax nodes into chunks. A packed unit is of kind ``group``; its ``members``
hold each member's ``(symbol, kind, start_line, end_line)``, so the symbol lookup, file outlines and
the ranking still see every name, and a search for one member's name shows that member's own lines
(:func:`narrow_to_member`). ``st-code adapt`` and data_gen's corpus split files without packing: they
want one function a pair.
"""

from __future__ import annotations

import re
from typing import Any

from st_code.data.code_units import CodeUnit

#: A function or method at most this many lines long may join a pack.
MEMBER_LINES = 15
#: A pack spans at most this many lines, from its first member's first line to its last member's last.
MAX_LINES = 40
_PACKABLE = ("function", "method")


def pack_small_units(units: list[CodeUnit], text: str, member_lines: int = MEMBER_LINES,
                     max_lines: int = MAX_LINES) -> list[CodeUnit]:
    """``units`` (one file's, in file order) with runs of small siblings packed, each run into one unit."""
    lines = text.split("\n")
    packed: list[CodeUnit] = []
    run: list[CodeUnit] = []

    def close_run() -> None:
        if len(run) == 1:
            packed.append(run[0])
        elif run:
            packed.append(_pack(run, lines))
        run.clear()

    for unit in units:
        small = unit.kind in _PACKABLE and unit.end_line - unit.start_line + 1 <= member_lines
        if (small and run and _parent(unit) == _parent(run[0]) and unit.start_line > run[-1].end_line
                and unit.end_line - run[0].start_line + 1 <= max_lines):
            run.append(unit)
            continue
        close_run()
        if small:
            run.append(unit)
        else:
            packed.append(unit)
    close_run()
    return packed


def _parent(unit: CodeUnit) -> str:
    return unit.symbol.rsplit(".", 1)[0] if "." in unit.symbol else ""


def _pack(run: list[CodeUnit], lines: list[str]) -> CodeUnit:
    first, last = run[0], run[-1]
    text = "\n".join(lines[first.start_line - 1:last.end_line]).rstrip()
    members = tuple((u.symbol, u.kind, u.start_line, u.end_line) for u in run)
    return CodeUnit(first.path, first.language, "group", first.symbol, first.start_line, last.end_line, text, "",
                    members)


def unit_names(unit: dict[str, Any]) -> list[str]:
    """Every name a stored unit defines: its members' for a pack, else its symbol (none for a window)."""
    members = unit.get("members")
    if members:
        return [member[0] for member in members if member[0]]
    return [unit["symbol"]] if unit.get("symbol") else []


def narrow_to_member(unit: dict[str, Any], name: str) -> dict[str, Any]:
    """The pack's member that the identifier ``name`` names (``Pool.get`` or ``get``) as a unit of its own
    (its kind, lines and text), or ``unit`` itself when no member is named so."""
    leaf = re.split(r"[.:]+", name)[-1]
    for symbol, kind, start, end in unit.get("members") or ():
        if symbol == name or symbol.split(".")[-1] == leaf:
            text = "\n".join(unit["text"].split("\n")[start - unit["start_line"]:end - unit["start_line"] + 1])
            narrowed = {key: value for key, value in unit.items() if key != "members"}
            narrowed.update(symbol=symbol, kind=kind, start_line=start, end_line=end, text=text.rstrip())
            return narrowed
    return unit


def display_symbol(unit: dict[str, Any]) -> str:
    """What a hit shows as its symbol: a pack's member names joined, each once (``Pool.get, Pool.put``;
    Elixir's clauses of one function share a name)."""
    return ", ".join(dict.fromkeys(unit_names(unit))) if unit.get("members") else unit.get("symbol") or ""


__all__ = ["pack_small_units", "unit_names", "narrow_to_member", "display_symbol", "MEMBER_LINES", "MAX_LINES"]

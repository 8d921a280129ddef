"""The grammars beyond the first nine (st_code.data.grammars): one small, real-looking file per language.

Each file is split as ``st-code index`` and ``st-code adapt`` split it: the units, their qualified
symbols, their lines (leading doc comments and attributes included) and their cleaned doc comments.
"""

from __future__ import annotations

import pytest

from st_code.data.code_units import has_grammar, split_units
from st_code.data.repo_pairs import TEXT2CODE, build_repository_pairs, code_without_doc
from st_code.data.repository import language_of

SNIPPETS = {
    "lib/rack/session.rb": '''require "securerandom"

module Rack
  # Keeps a session in a signed cookie.
  class Session < Base
    # Reads the session from the request.
    def load(env)
      env["rack.session"]
    end

    def self.build(app)
      new(app)
    end
  end
end
''',
    "src/Pool.cs": '''using System;

namespace Net.Pooling
{
    /// <summary>A pool of open connections.</summary>
    [Serializable]
    public class Pool
    {
        public Pool(int size) { Size = size; }

        /// <summary>Takes a connection from the pool.</summary>
        public Connection Take()
        {
            return new Connection();
        }
    }
}
''',
    "client/Retry.kt": '''package io.client

/**
 * Retries a request with backoff.
 */
class Retry(val times: Int) {
    /** Runs [block] until it succeeds. */
    fun <T> run(block: () -> T): T {
        return block()
    }

    companion object {
        fun once() = Retry(1)
    }
}

fun retry(times: Int): Retry = Retry(times)
''',
    "core/Decoder.scala": '''package io.json

/** Decodes JSON into values. */
trait Decoder[A] {
  def apply(c: Cursor): Result[A]

  /** Maps the decoded value. */
  def map[B](f: A => B): Decoder[B] = new Decoder[B] {
    def apply(c: Cursor): Result[B] = Decoder.this(c).map(f)
  }
}

object Decoder {
  def instance[A](f: Cursor => Result[A]): Decoder[A] = c => f(c)
}
''',
    "Source/Session.swift": '''import Foundation

/// Creates and manages requests.
open class Session {
    let queue: DispatchQueue

    /// Creates a session.
    public init(queue: DispatchQueue) {
        self.queue = queue
    }

    func request(_ url: String) -> Request {
        Request(url: url)
    }
}

extension Session: CustomStringConvertible {
    public var description: String { "Session" }
}
''',
    "src/Router.php": '''<?php

namespace App;

/**
 * Matches requests to routes.
 */
class Router
{
    /** Adds a route. */
    public function add(string $path): void
    {
        $this->routes[] = $path;
    }
}

function route(string $path): Router
{
    return new Router();
}
''',
    "lua/plugin.lua": '''local M = {}

--- Loads a plugin by name.
function M.load(name)
  return require(name)
end

local function helper(x)
  return x * 2
end

return M
''',
    "lib/git.bash": '''#!/usr/bin/env bash

# Prints the current branch.
git_branch() {
  git rev-parse --abbrev-ref HEAD
}

function git_dirty {
  test -n "$(git status --porcelain)"
}
''',
    "lib/phoenix/token.ex": '''defmodule Phoenix.Token do
  @moduledoc """
  Signs and verifies tokens.
  """

  @doc """
  Signs data into a token.
  """
  @spec sign(term, binary, term) :: binary
  def sign(context, salt, data) when is_binary(salt) do
    encode(context, salt, data)
  end

  defp encode(context, salt, data), do: {context, salt, data}
end
''',
}

EXPECTED = {
    'lib/rack/session.rb': [
        ('class', 'Rack', 3, 15, ''),
        ('class', 'Rack.Session', 4, 14, 'Keeps a session in a signed cookie.'),
        ('method', 'Rack.Session.load', 6, 9, 'Reads the session from the request.'),
        ('method', 'Rack.Session.build', 11, 13, ''),
    ],
    'src/Pool.cs': [
        ('module', '', 1, 4, ''),
        ('class', 'Net.Pooling.Pool', 5, 16, 'A pool of open connections.'),
        ('method', 'Net.Pooling.Pool.Pool', 9, 9, ''),
        ('method', 'Net.Pooling.Pool.Take', 11, 15, 'Takes a connection from the pool.'),
    ],
    'client/Retry.kt': [
        ('class', 'Retry', 3, 15, 'Retries a request with backoff.'),
        ('method', 'Retry.run', 7, 10, 'Runs [block] until it succeeds.'),
        ('class', 'Retry.Companion', 12, 14, ''),
        ('method', 'Retry.Companion.once', 13, 13, ''),
        ('function', 'retry', 17, 17, ''),
    ],
    'core/Decoder.scala': [
        ('class', 'Decoder', 3, 11, 'Decodes JSON into values.'),
        ('method', 'Decoder.map', 7, 10, 'Maps the decoded value.'),
        ('class', 'Decoder', 13, 15, ''),
        ('method', 'Decoder.instance', 14, 14, ''),
    ],
    'Source/Session.swift': [
        ('class', 'Session', 3, 15, 'Creates and manages requests.'),
        ('method', 'Session.init', 7, 10, 'Creates a session.'),
        ('method', 'Session.request', 12, 14, ''),
        ('class', 'Session', 17, 19, ''),
    ],
    'src/Router.php': [
        ('class', 'Router', 5, 15, 'Matches requests to routes.'),
        ('method', 'Router.add', 10, 14, 'Adds a route.'),
        ('function', 'route', 17, 20, ''),
    ],
    'lua/plugin.lua': [
        ('function', 'M.load', 3, 6, 'Loads a plugin by name.'),
        ('function', 'helper', 8, 10, ''),
    ],
    'lib/git.bash': [
        ('function', 'git_branch', 3, 6, 'Prints the current branch.'),
        ('function', 'git_dirty', 8, 10, ''),
    ],
    'lib/phoenix/token.ex': [
        ('class', 'Phoenix.Token', 1, 15, 'Signs and verifies tokens.'),
        ('method', 'Phoenix.Token.sign', 6, 12, 'Signs data into a token.'),
        ('method', 'Phoenix.Token.encode', 14, 14, ''),
    ],
}


@pytest.mark.parametrize("path", sorted(SNIPPETS))
def test_each_language_splits_into_named_units_with_their_doc_comments(path):
    language = language_of(path)
    assert has_grammar(language), f"{language}'s grammar wheel is a dependency"
    units = split_units(SNIPPETS[path], language, path)
    assert [(u.kind, u.symbol, u.start_line, u.end_line, u.doc) for u in units] == EXPECTED[path]
    lines = SNIPPETS[path].split("\n")
    for unit in units:  # a unit's text is exactly its lines, so search hits point at real code
        assert unit.text == "\n".join(lines[unit.start_line - 1:unit.end_line]).rstrip()


def test_a_first_member_keeps_the_comment_its_container_holds_before_the_body():
    """Ruby puts ``# doc`` of a class's first method beside the class body, not in it."""
    text = "class Cache\n  # Reads one entry.\n  def read(key)\n    @store[key]\n  end\nend\n"
    read = next(u for u in split_units(text, "Ruby", "cache.rb") if u.symbol == "Cache.read")
    assert (read.start_line, read.doc) == (2, "Reads one entry.")


def test_an_elixir_function_without_doc_and_a_guarded_head_is_named_by_its_call():
    text = "defmodule M do\n  defp pick(x) when x > 0 and is_integer(x) do\n    x\n  end\nend\n"
    units = split_units(text, "Elixir", "m.ex")
    assert [(u.kind, u.symbol, u.doc) for u in units] == [("class", "M", ""), ("method", "M.pick", "")]


def test_elixir_docs_in_a_sigil_count_and_doc_false_is_no_doc():
    text = ('defmodule M do\n  @doc ~S"""\n  Parses a path.\n  """\n  def parse(x), do: x\n\n'
            '  @doc false\n  def hidden(x), do: x\nend\n')
    docs = {u.symbol: u.doc for u in split_units(text, "Elixir", "m.ex")}
    assert docs == {"M": "", "M.parse": "Parses a path.", "M.hidden": ""}


@pytest.mark.parametrize("path", sorted(SNIPPETS))
def test_adapt_pairs_take_the_doc_out_of_the_code_in_every_language(path):
    """doc -> code pairs must not be string matching: the code side loses its doc comment or @doc."""
    documented = [u for u in split_units(SNIPPETS[path], language_of(path), path) if u.doc]
    assert documented, path
    for unit in documented:
        code = code_without_doc(unit)
        assert unit.doc.splitlines()[0] not in code, (path, unit.symbol)
        assert unit.symbol.split(".")[-1] in code, (path, unit.symbol)  # the definition itself stays


def test_a_long_class_head_keeps_its_own_line_when_a_member_follows_it_directly():
    """The head of a class too long to embed whole runs to its first member: the ``class`` line is in it."""
    methods = "".join(f"    def m{i}(x)\n      x\n    end\n" for i in range(50))
    text = f"# A long class.\nclass Big\n{methods}end\n"
    head = split_units(text, "Ruby", "big.rb")[0]
    assert (head.symbol, head.start_line, head.end_line, head.doc) == ("Big", 1, 2, "A long class.")


def test_adapt_finds_doc_comment_pairs_in_a_folder_of_these_languages(tmp_path):
    """The seam adapt crosses: walk -> split -> doc -> code pairs, in every new language."""
    for copy in ("a", "b"):  # two files a language, so the split has a side for each
        for path, text in SNIPPETS.items():
            (tmp_path / copy / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / copy / path).write_text(text)
    pairs = build_repository_pairs(tmp_path, heldout_percent=50, seed=0)
    docs = [p for p in pairs.train + pairs.heldout_pairs if p.task == TEXT2CODE]
    assert {p.language for p in docs} == {language_of(path) for path in SNIPPETS}
    assert all(p.query not in p.positive for p in docs)

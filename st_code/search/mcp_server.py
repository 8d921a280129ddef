"""``st-code mcp``: a repository's code search as tools for coding agents, over the Model Context
Protocol (the official ``mcp`` SDK, stdio transport).

Tools: ``search`` (hybrid search, hits with path, lines, symbol, score and a snippet), ``index`` (build
the index when there is none), ``update`` (re-embed what changed since, e.g. after a ``git checkout``)
and ``status``. The model is loaded once; after an update the index is reopened. stdout carries the
protocol, so every log line goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from st_code.errors import UsageError

INSTRUCTIONS = ("Semantic + lexical code search over one repository. Use `search` with a description of what "
                "the code does (\"where are retries with backoff handled\") or a symbol name (\"RouterGroup\"); "
                "call `update` after editing files or switching branches.")


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class RepositorySearch:
    """The state behind the tools: one repository, its index folder, a model loaded once."""

    def __init__(self, repository: str | Path, index: str | Path | None = None, model: str | None = None,
                 device: str | None = None, rerank: str | None = None, rerank_api_base: str | None = None) -> None:
        self.repository = Path(repository).resolve()
        if not self.repository.exists():
            raise UsageError(f"{repository} does not exist: pass the repository to serve")
        self.index = Path(index) if index else self.repository / ".st-code-index"
        self.model_name, self.device = model, device
        self.reranker = None
        if rerank_api_base and not rerank:
            raise UsageError("--rerank-api-base goes with --rerank llm:MODEL")
        if rerank:  # loaded at start: a missing cross-encoder is an error before the client connects
            from st_code.search.rerank import make_reranker

            self.reranker = make_reranker(rerank, device=device, api_base=rerank_api_base)
        self._loaded = None
        self._searcher = None

    def _model(self):
        if self._loaded is None:
            from st_code.search.index import load_search_model
            from st_code.search.manifest import read_manifest

            name = self.model_name
            if name is None and (self.index / "manifest.json").is_file():
                name = read_manifest(self.index)["model"]
            self._loaded = load_search_model(name, self.device)
        return self._loaded

    def searcher(self):
        if self._searcher is None:
            from st_code.search import CodeSearcher

            if not (self.index / "manifest.json").is_file():
                raise UsageError(f"no index at {self.index} yet: call the index tool first")
            self._searcher = CodeSearcher(self.index, model=self._model()[0], reranker=self.reranker)
        return self._searcher

    def search(self, query: str, k: int = 10, per_file: bool = False, lines: int = 12) -> list[dict[str, Any]]:
        hits = self.searcher().search([query], k=k, per_file=per_file)[0]
        return [{"path": h.path, "start_line": h.start_line, "end_line": h.end_line, "symbol": h.symbol,
                 "kind": h.kind, "score": round(h.score, 4), "similarity": round(h.similarity or 0.0, 4),
                 "snippet": h.snippet(lines)} for h in hits]

    def build(self) -> str:
        from st_code.search import build_index

        report = build_index(self.repository, self.index, _loaded=self._model(), log=_log, progress=False)
        self._searcher = None
        return f"indexed {self.repository} into {self.index}: {report.line()}"

    def update(self) -> str:
        from st_code.search import update_index

        if not (self.index / "manifest.json").is_file():
            return self.build()
        report = update_index(self.index, root=self.repository, device=self.device, log=_log, progress=False)
        self._searcher = None
        return f"updated {self.index}: {report.line()}"

    def status(self) -> dict[str, Any]:
        from st_code.search.manifest import read_manifest

        if not (self.index / "manifest.json").is_file():
            return {"repository": str(self.repository), "index": str(self.index), "built": False}
        manifest = read_manifest(self.index)
        return {"repository": str(self.repository), "index": str(self.index), "built": True,
                "units": manifest["units"], "files": len(manifest["files"]), "model": manifest["model"],
                "hybrid": manifest.get("lexical") == "bm25s", "file_outlines": "file_outlines" in manifest}


def build_server(state: RepositorySearch):
    """The MCP server with the four tools bound to ``state``."""
    try:
        from mcp.server.mcpserver import MCPServer
    except ImportError:
        raise UsageError("st-code mcp needs the MCP SDK 2.x: pip install 'st-code[mcp]'") from None

    server = MCPServer("st-code", instructions=INSTRUCTIONS)

    @server.tool(description="Search the repository's code: a description of behaviour or a symbol name. "
                             "Returns the best units (functions, classes, blocks) with path, lines, symbol, "
                             "score and snippet; per_file keeps one hit per file.")
    def search(query: str, k: int = 10, per_file: bool = False) -> list[dict[str, Any]]:
        return state.search(query, k=k, per_file=per_file)

    @server.tool(description="Build the search index of the repository (once; later changes: update).")
    def index() -> str:
        return state.build()

    @server.tool(description="Bring the index up to date after edits or a branch switch: only code it has "
                             "not embedded before is embedded.")
    def update() -> str:
        return state.update()

    @server.tool(description="Where the index is, whether it is built, how many units and files it holds.")
    def status() -> dict[str, Any]:
        return state.status()

    return server


def serve(repository: str | Path, index: str | Path | None = None, model: str | None = None,
          device: str | None = None, rerank: str | None = None, rerank_api_base: str | None = None) -> None:
    """Run the server on stdio until the client closes it."""
    build_server(RepositorySearch(repository, index, model, device, rerank, rerank_api_base)).run("stdio")


__all__ = ["RepositorySearch", "build_server", "serve"]

"""``st-code mcp`` driven by a real MCP client session (the official SDK's client) over stdio: the server is
a real ``python -m st_code mcp`` process with the packaged MiniLM; nothing is mocked."""

from __future__ import annotations

import json
import os
import sys

import pytest

pytest.importorskip("mcp.client.client")

from tests.test_hybrid_search import SOURCES  # noqa: E402
from tests.test_code_search import write_repo  # noqa: E402


def _payload(result) -> object:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


def test_a_client_session_indexes_searches_and_updates_over_stdio(tmp_path, minilm_path):
    import anyio
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    repo = write_repo(tmp_path / "repo", SOURCES)
    env = {key: os.environ[key] for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_NUM_THREADS", "PATH")
           if key in os.environ}
    server = StdioServerParameters(command=sys.executable,
                                   args=["-m", "st_code", "mcp", str(repo), "--model", minilm_path],
                                   env=env, cwd=os.getcwd())

    async def session() -> dict:
        seen = {}
        async with Client(server, read_timeout_seconds=240) as client:
            seen["tools"] = sorted(tool.name for tool in (await client.list_tools()).tools)
            seen["before"] = _payload(await client.call_tool("status", {}))
            seen["index"] = _payload(await client.call_tool("index", {}))
            seen["built"] = _payload(await client.call_tool("status", {}))
            seen["search"] = _payload(await client.call_tool("search", {"query": "Router", "k": 3}))
            (repo / "retry.go").write_text("package chi\n\n// RetryWithBackoff retries a request, doubling the wait "
                                           "each time.\nfunc RetryWithBackoff(n int) error {\n\treturn nil\n}\n")
            seen["update"] = _payload(await client.call_tool("update", {}))
            seen["after"] = _payload(await client.call_tool("search", {"query": "retry with exponential backoff",
                                                                       "k": 2, "per_file": True}))
        return seen

    seen = anyio.run(session)
    assert seen["tools"] == ["index", "search", "status", "update"]
    assert seen["before"]["built"] is False
    assert "embedded" in seen["index"] and (repo / ".st-code-index" / "manifest.json").is_file()
    assert seen["built"]["hybrid"] is True and seen["built"]["file_outlines"] is True
    assert seen["search"][0]["path"] == "chi.go" and seen["search"][0]["symbol"] == "Router"
    assert "type Router interface" in seen["search"][0]["snippet"]
    assert "embedded 1," in seen["update"]  # only the new file's unit
    assert seen["after"][0]["path"] == "retry.go"

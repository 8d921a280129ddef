"""The project's LLM client (st_code/llm) and data_gen's local server command, against real
OpenAI-compatible HTTP servers on 127.0.0.1 (tests/openai_stub.py)."""

from __future__ import annotations

import pytest

from tests.openai_stub import OpenAIStub


@pytest.mark.parametrize("kind", ["openai-compatible", "litellm"])
def test_calls_are_spread_over_several_endpoints(kind):
    import asyncio

    from st_code.llm.client import LLMClient

    with OpenAIStub(lambda p: "first") as one, OpenAIStub(lambda p: "second") as two:
        client = LLMClient("openai/stub", [one.api_base, two.api_base], concurrency=8, timeout=10, retries=0,
                           client=kind)

        async def many():
            try:
                return await asyncio.gather(*(client.complete(f"prompt {i}") for i in range(40)))
            finally:
                await client.aclose()

        answers = asyncio.run(many())
    assert set(answers) == {"first", "second"}
    assert len(one.requests) + len(two.requests) == 40 and min(len(one.requests), len(two.requests)) >= 5
    assert client.stats.calls == 40 and client.stats.prompt_tokens == 400


def _run(client, prompts):
    import asyncio

    async def go():
        try:
            return await asyncio.gather(*(client.complete(p) for p in prompts), return_exceptions=True)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_lean_client_retries_rate_limits_and_server_errors_then_succeeds():
    from st_code.llm.client import LLMClient

    seen: dict[str, int] = {}

    def flaky(prompt: str):
        seen[prompt] = seen.get(prompt, 0) + 1
        if seen[prompt] == 1:
            return (429, "slow down") if prompt.endswith("0") else (503, "warming up")
        return f"answer to {prompt}"

    with OpenAIStub(flaky) as server:
        client = LLMClient("hosted_vllm/Qwen/Qwen2.5-Coder-7B-Instruct", [server.api_base], retries=2, timeout=5)
        assert client.kind == "openai-compatible"
        answers = _run(client, [f"p{i}" for i in range(6)])
    assert answers == [f"answer to p{i}" for i in range(6)]
    assert set(seen.values()) == {2} and client.stats.failures == 0  # one retry each, none counted as failed
    assert client.stats.calls == 6 and client.stats.completion_tokens == 12


def test_lean_client_does_not_retry_bad_requests_and_rejects_malformed_json():
    from st_code.llm.client import LLMClient, LLMError

    def answer(prompt: str):
        if prompt == "garbled":
            return (200, '{"choices": [')  # a proxy cut the body short
        return (400, "bad model name") if prompt == "bad" else "fine"

    with OpenAIStub(answer) as server:
        client = LLMClient("openai/stub", [server.api_base], retries=1, timeout=5)
        results = _run(client, ["bad", "good", "garbled"])
        assert server.requests.count("bad") == 1  # a 400 is not retried
        assert server.requests.count("garbled") == 2  # a malformed body is, like a 5xx
    assert isinstance(results[0], LLMError) and results[0].reason == "bad_request" and results[1] == "fine"
    assert isinstance(results[2], LLMError) and "malformed response" in str(results[2])
    assert client.stats.failure_reasons == {"bad_request": 1, "server_error": 1}


def test_lean_client_fails_over_from_a_dead_endpoint():
    import socket

    from st_code.llm.client import LLMClient

    with socket.socket() as placeholder:  # a port nobody listens on: connection refused
        placeholder.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{placeholder.getsockname()[1]}/v1"
    with OpenAIStub(lambda p: "alive") as server:
        client = LLMClient("openai/stub", [dead, server.api_base], retries=1, timeout=5, concurrency=4)
        answers = _run(client, [f"p{i}" for i in range(10)])
    assert answers == ["alive"] * 10  # calls that hit the dead endpoint were retried on the live one
    assert len(server.requests) == 10


def test_client_choice():
    from st_code.llm.client import choose_client

    assert choose_client("hosted_vllm/Qwen2.5-Coder-32B-Instruct", ["http://gpu:8000/v1"]) == "openai-compatible"
    assert choose_client("openai/smollm2", ["http://127.0.0.1:8080/v1"]) == "openai-compatible"
    assert choose_client("openai/gpt-4o-mini", []) == "litellm"  # the provider's own endpoint: litellm
    assert choose_client("anthropic/claude-sonnet-4", ["http://proxy/v1"]) == "litellm"
    assert choose_client("openai/x", ["http://h/v1"], "litellm") == "litellm"
    with pytest.raises(ValueError, match="needs --api-base"):
        choose_client("openai/x", [], "openai-compatible")
    with pytest.raises(ValueError, match="unknown client"):
        choose_client("openai/x", [], "curl")


def test_served_model_name_drops_the_provider_prefix():
    from st_code.llm.openai_http import served_model_name

    assert served_model_name("hosted_vllm/Qwen/Qwen2.5-Coder-32B-Instruct") == "Qwen/Qwen2.5-Coder-32B-Instruct"
    assert served_model_name("openai/gpt-4o-mini") == "gpt-4o-mini"
    assert served_model_name("my-model") == "my-model"


def test_cost_is_priced_from_litellm_for_known_models():
    from st_code.llm.client import LLMClient

    with OpenAIStub(lambda p: "ok") as server:  # an OpenAI-compatible proxy serving a priced model name
        priced = LLMClient("openai/gpt-4o-mini", [server.api_base])
        local = LLMClient("openai/my-local-model", [server.api_base])
        _run(priced, ["a", "b"])
        _run(local, ["a"])
    assert priced.stats.prompt_tokens == 20 and priced.cost() is not None and priced.cost() > 0
    assert local.cost() is None  # litellm has no price for a local model: "unknown", not $0


def test_local_server_cli_names_missing_pieces(tmp_path, capsys):
    from data_gen.local_server import main, server_command

    assert main(["--model", str(tmp_path / "missing.gguf")]) == 2
    assert "missing.gguf does not exist" in capsys.readouterr().err
    command = server_command(tmp_path / "m.gguf", "127.0.0.1", 8080, "smollm2", 4096, 2)
    assert command[1:3] == ["-m", "llama_cpp.server"]
    assert command[command.index("--model_alias") + 1] == "smollm2" and command[-2:] == ["--n_threads", "2"]

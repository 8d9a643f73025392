"""The test doubles: scripts, the role router, the in-process ScriptedLLM and the loopback server."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import openai
import pytest

from nemo_opt.llm.base import LLM, Message, ToolCall, ToolSpec, Usage
from nemo_opt.llm.openai_backend import OpenAIChat
from nemo_opt.llm.retry import RetryPolicy
from nemo_opt.settings import Settings
from nemo_opt.testing import OpenAICompatServer, Reply, RoleRouter, ScriptedLLM, ScriptExhausted, ScriptQueue

BASH = ToolSpec("bash", "Run a shell command.", {"type": "object", "properties": {"command": {"type": "string"}}})


def conversation(role: str, question: str = "go") -> list[Message]:
    return [Message("system", f"You are an agent. ROLE: {role}"), Message("user", question)]


def post(url: str, body: bytes, path: str = "/chat/completions") -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url + path, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


# --- scripts --------------------------------------------------------------------------------------------------


def test_list_script_answers_in_order() -> None:
    llm = ScriptedLLM([Reply("one"), Reply("two", usage=(7, 3))])
    assert isinstance(llm, LLM)
    first = llm.complete([Message("user", "a" * 40)], temperature=0.5, max_tokens=9)
    second = llm.complete([Message("user", "b")])
    assert (first.first.text, second.first.text) == ("one", "two")
    assert first.usage == Usage(10, 1) and second.usage == Usage(7, 3)
    assert first.model == "test" and first.first.finish_reason == "stop"
    assert llm.requests[0] == {
        "messages": [{"role": "user", "content": "a" * 40}],
        "tools": None,
        "temperature": 0.5,
        "n": 1,
        "max_tokens": 9,
    }
    with pytest.raises(ScriptExhausted, match="all 2 were used"):
        llm.complete([Message("user", "c")])


def test_tool_calls_get_sequential_ids_and_keep_raw_arguments() -> None:
    llm = ScriptedLLM([Reply(tool_calls=[("bash", {"command": "ls"}), ("bash", "{not json")])])
    choice = llm.complete([Message("user", "go")], tools=[BASH]).first
    assert choice.tool_calls == (
        ToolCall("call_1", "bash", '{"command": "ls"}'),
        ToolCall("call_2", "bash", "{not json"),
    )
    assert choice.finish_reason == "tool_calls"
    assert llm.requests[0]["tools"][0]["function"]["name"] == "bash"


def test_callable_script_sees_wire_format_and_n_calls_it_n_times() -> None:
    seen: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = []

    def script(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        seen.append((messages, tools))
        return Reply(f"sample {len(seen)}", usage=(5, 2))

    history = [
        Message("user", "go"),
        Message("assistant", "", (ToolCall("c1", "bash", "{}"),)),
        Message("tool", "out", tool_call_id="c1"),
    ]
    completion = ScriptedLLM(script).complete(history, tools=[BASH], n=3)
    assert [c.text for c in completion.choices] == ["sample 1", "sample 2", "sample 3"]
    assert completion.usage == Usage(5, 6)
    messages, tools = seen[0]
    assert messages[1]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "bash", "arguments": "{}"},
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "out"}
    assert tools is not None and tools[0]["type"] == "function"


def test_script_queue_is_thread_safe() -> None:
    queue = ScriptQueue([Reply(str(i)) for i in range(200)])
    taken: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            reply = queue([], None)
            with lock:
                taken.append(reply.text)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken, key=int) == [str(i) for i in range(200)] and queue.remaining == 0


# --- role router -----------------------------------------------------------------------------------------------


def test_role_router_keeps_interleaved_conversations_apart() -> None:
    turns = 5
    router = RoleRouter(
        {
            "ROLE: simulator": [Reply(f"sim {i}") for i in range(turns)],
            "ROLE: optimizer": [Reply(f"opt {i}") for i in range(turns)],
        }
    )
    llm = ScriptedLLM(router)
    results: dict[str, list[str]] = {"simulator": [], "optimizer": []}
    barrier = threading.Barrier(2)

    def agent(role: str) -> None:
        for _ in range(turns):
            barrier.wait()  # both agents ask at the same moment, every turn
            results[role].append(llm.complete(conversation(role)).first.text)

    threads = [threading.Thread(target=agent, args=(role,)) for role in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"simulator": [f"sim {i}" for i in range(turns)], "optimizer": [f"opt {i}" for i in range(turns)]}
    assert router.remaining("ROLE: simulator") == 0


def test_role_router_over_http(tmp_path: Path) -> None:
    router = RoleRouter({"ROLE: simulator": [Reply("s1"), Reply("s2")], "ROLE: optimizer": [Reply("o1"), Reply("o2")]})
    settings = Settings(home=tmp_path)
    with OpenAICompatServer(router) as server:
        llm = OpenAIChat("m", settings, api_key="k", base_url=server.url, policy=RetryPolicy(0, 1.0))
        out: dict[str, list[str]] = {"simulator": [], "optimizer": []}

        def agent(role: str) -> None:
            for _ in range(2):
                out[role].append(llm.complete(conversation(role)).first.text)

        threads = [threading.Thread(target=agent, args=(role,)) for role in out]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert out == {"simulator": ["s1", "s2"], "optimizer": ["o1", "o2"]}


def test_role_router_routing_rules_and_errors() -> None:
    router = RoleRouter({"ROLE: judge": [Reply("verdict")], "ROLE: extractor": lambda m, t: Reply("spec")})
    # Without a system message the first message is searched.
    assert router([{"role": "user", "content": "ROLE: extractor\nread this"}], None).text == "spec"
    assert router([{"role": "system", "content": "ROLE: judge"}], None).text == "verdict"
    with pytest.raises(ScriptExhausted, match="role 'ROLE: judge'") as info:
        router([{"role": "system", "content": "ROLE: judge"}], None)
    assert isinstance(info.value, AssertionError)
    with pytest.raises(AssertionError, match="no role marker"):
        router([{"role": "system", "content": "ROLE: other"}], None)
    with pytest.raises(TypeError):
        router.remaining("ROLE: extractor")


# --- loopback server -------------------------------------------------------------------------------------------


def test_server_speaks_the_openai_format() -> None:
    with OpenAICompatServer([Reply("a"), Reply(tool_calls=[("bash", {"command": "ls"})])], model="qwen") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        body = json.dumps({"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "n": 2}).encode()
        status, data, headers = post(server.url, body)
        models = openai.OpenAI(api_key="k", base_url=server.url, max_retries=0).models.list()
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert data["object"] == "chat.completion" and data["model"] == "qwen" and data["id"].startswith("chatcmpl-")
    first, second = data["choices"]
    assert first == {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}
    assert second["message"]["content"] is None and second["finish_reason"] == "tool_calls"
    assert second["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}
    ]
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert [m.id for m in models.data] == ["qwen"]
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/v1/chat/completions"), ("GET", "/v1/models")]


def test_server_faults_and_bad_requests() -> None:
    script = [Reply(status=429, text="slow down", headers={"Retry-After": "3"}), Reply(raw_body="not json at all")]
    with OpenAICompatServer(script) as server:
        ok = json.dumps({"messages": []}).encode()
        status, data, headers = post(server.url, ok)
        assert (status, headers["Retry-After"], data["error"]["message"]) == (429, "3", "slow down")
        assert data["error"]["type"] == "rate_limit_error"
        request = urllib.request.Request(server.url + "/chat/completions", data=ok)
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.read() == b"not json at all"
        assert post(server.url, b"{broken")[0] == 400
        status, data, _ = post(server.url, ok, path="/embeddings")
        assert status == 404 and "no route" in data["error"]["message"]


def test_server_delay_and_fast_close() -> None:
    with OpenAICompatServer([Reply("slow", delay=0.3), Reply("never", delay=30)]) as server:
        body = json.dumps({"messages": []}).encode()
        start = time.monotonic()
        assert post(server.url, body)[1]["choices"][0]["message"]["content"] == "slow"
        assert time.monotonic() - start >= 0.3
        failures: list[Exception] = []

        def wait_for_never() -> None:
            try:
                post(server.url, body)
            except Exception as exc:
                failures.append(exc)

        hanging = threading.Thread(target=wait_for_never, daemon=True)
        hanging.start()
        while len(server.requests) < 2:
            time.sleep(0.01)
        start = time.monotonic()
    assert time.monotonic() - start < 2
    hanging.join(timeout=5)
    # Closing wakes the delayed handler, which hangs up without answering.
    assert not hanging.is_alive() and len(failures) == 1


def test_server_reports_script_errors(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(ScriptExhausted), OpenAICompatServer([Reply("only")]) as server:
        llm = OpenAIChat("m", settings, api_key="k", base_url=server.url, policy=RetryPolicy(3, 1.0))
        assert llm.complete([Message("user", "1")]).first.text == "only"
        # The exhausted script answers 400 (no retries) and is re-raised when the block ends.
        post(server.url, json.dumps({"messages": []}).encode())
    assert len(server.chat_requests) == 2 and len(server.errors) == 1


def test_server_url_needs_a_running_server() -> None:
    server = OpenAICompatServer([])
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.start()
    server.close()
    server.close()

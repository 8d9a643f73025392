"""Model backends through the real SDKs, the retry policy, the registry, the reply cache and pricing."""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx2
import pytest

from nemo_opt.exceptions import (
    ConfigError,
    LLMBadResponse,
    LLMRejected,
    LLMUnavailable,
    MissingExtra,
    ModelNotConfigured,
)
from nemo_opt.llm.anthropic_backend import AnthropicChat
from nemo_opt.llm.base import LLM, Choice, Completion, Message, ToolCall, ToolSpec, Usage
from nemo_opt.llm.cache import ReplyCache, request_key
from nemo_opt.llm.openai_backend import OpenAIChat
from nemo_opt.llm.pricing import Price, cost_usd, price_for
from nemo_opt.llm.recorder import RecordedLLM
from nemo_opt.llm.registry import ModelRef, create_llm, parse_model_name
from nemo_opt.llm.retry import RetryPolicy
from nemo_opt.settings import Settings
from nemo_opt.store import RunStore
from nemo_opt.testing import OpenAICompatServer, Reply

BASH = ToolSpec("bash", "Run a shell command.", {"type": "object", "properties": {"command": {"type": "string"}}})
HELLO = [Message("system", "You are terse."), Message("user", "Say hi.")]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, llm_timeout=5.0, llm_max_retries=2, llm_backoff_max=5.0)


class Sleeps(list[float]):
    """An injected sleep that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def chat(server: OpenAICompatServer, settings: Settings, sleeps: Sleeps, retries: int = 2, **kw: Any) -> OpenAIChat:
    policy = RetryPolicy(retries, settings.llm_backoff_max, sleep=sleeps)
    return OpenAIChat("test-model", settings, api_key="sk-test", base_url=server.url, policy=policy, **kw)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# --- OpenAI backend: replies ------------------------------------------------------------------------------


def test_text_reply(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply("hi", usage=(12, 3))]) as server:
        llm = chat(server, settings, sleeps)
        assert isinstance(llm, LLM)
        completion = llm.complete(HELLO, temperature=0.3)
    assert completion.first == Choice(text="hi", finish_reason="stop")
    assert completion.usage == Usage(12, 3)
    assert completion.model == "test-model"
    assert completion.retries == 0 and completion.cost_usd is None and completion.seconds > 0
    body = server.chat_requests[0]
    assert body["messages"] == [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hi."}]
    assert body["temperature"] == 0.3
    assert "max_tokens" not in body and "n" not in body and "tools" not in body
    assert server.requests[0].headers["authorization"] == "Bearer sk-test"


def test_tool_calls_parsed(settings: Settings, sleeps: Sleeps) -> None:
    reply = Reply("running", tool_calls=[("bash", {"command": "ls -l"}), ("bash", '{"command": "pwd"}')])
    with OpenAICompatServer([reply]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO, tools=[BASH], max_tokens=50)
    choice = completion.first
    assert choice.text == "running" and choice.finish_reason == "tool_calls"
    assert [(tc.name, json.loads(tc.arguments)) for tc in choice.tool_calls] == [
        ("bash", {"command": "ls -l"}),
        ("bash", {"command": "pwd"}),
    ]
    assert len({tc.id for tc in choice.tool_calls}) == 2
    body = server.chat_requests[0]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "bash", "description": BASH.description, "parameters": BASH.parameters},
        }
    ]
    assert body["max_tokens"] == 50


def test_tool_result_round_trips(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply(tool_calls=[("bash", {"command": "ls"})]), Reply("done")]) as server:
        llm = chat(server, settings, sleeps)
        first = llm.complete(HELLO, tools=[BASH])
        call = first.first.tool_calls[0]
        history = [*HELLO, first.first.as_message(), Message("tool", "a.txt\n", tool_call_id=call.id)]
        assert llm.complete(history, tools=[BASH]).first.text == "done"
    sent = server.chat_requests[1]["messages"]
    assert sent[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call.id, "type": "function", "function": {"name": "bash", "arguments": call.arguments}}],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": call.id, "content": "a.txt\n"}


def test_invalid_tool_arguments_are_passed_through(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply(tool_calls=[("bash", '{"command": "ls')])]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO, tools=[BASH])
    assert completion.first.tool_calls[0].arguments == '{"command": "ls'
    assert completion.retries == 0


def test_n_choices_in_one_request(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply("a"), Reply("b"), Reply("c")]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO, n=3, temperature=0.7)
    assert [c.text for c in completion.choices] == ["a", "b", "c"]
    assert len(server.chat_requests) == 1 and server.chat_requests[0]["n"] == 3


def test_server_ignoring_n_is_asked_again(settings: Settings, sleeps: Sleeps) -> None:
    script = [Reply(t, usage=(10, 5)) for t in "abc"]
    with OpenAICompatServer(script, ignore_n=True) as server:
        completion = chat(server, settings, sleeps).complete(HELLO, n=3)
    assert [c.text for c in completion.choices] == ["a", "b", "c"]
    assert completion.usage == Usage(30, 15)
    assert [body.get("n", 1) for body in server.chat_requests] == [3, 2, 1]


def test_missing_usage_counts_as_zero(settings: Settings, sleeps: Sleeps) -> None:
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    with OpenAICompatServer([Reply(raw_body=json.dumps(body))]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO)
    assert completion.first.text == "ok" and completion.usage == Usage(0, 0)


# --- OpenAI backend: retries and errors --------------------------------------------------------------------


def test_retry_after_is_honoured(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply(status=429, headers={"Retry-After": "2"}), Reply("ok")]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO)
    assert completion.first.text == "ok" and completion.retries == 1
    assert sleeps == [2.0]


def test_retry_after_is_capped_by_backoff_max(settings: Settings, sleeps: Sleeps) -> None:
    script = [Reply(status=429, headers={"Retry-After": "120"}), Reply(status=503, headers={"retry-after-ms": "1500"})]
    with OpenAICompatServer([*script, Reply("ok")]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO)
    assert completion.retries == 2
    assert sleeps == [settings.llm_backoff_max, 1.5]


def test_server_errors_then_success(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply(status=500), Reply(status=503), Reply("ok")]) as server:
        completion = chat(server, settings, sleeps).complete(HELLO)
    assert completion.first.text == "ok" and completion.retries == 2
    # Exponential backoff with jitter: attempt k waits in [0.5, 1] * min(backoff_max, 2**k).
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_rate_limited_forever_gives_up(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer(lambda messages, tools: Reply(status=429, text="slow down")) as server:
        with pytest.raises(LLMUnavailable) as info:
            chat(server, settings, sleeps, retries=3).complete(HELLO)
        url = server.url
    assert len(server.chat_requests) == 4 and len(sleeps) == 3
    assert url in str(info.value) and "429" in str(info.value) and "slow down" in str(info.value)


def test_connection_refused_fails_fast(settings: Settings) -> None:
    url = closed_port_url()
    llm = OpenAIChat("m", settings, api_key="k", base_url=url, policy=RetryPolicy(2, backoff_max=0.01))
    start = time.monotonic()
    with pytest.raises(LLMUnavailable) as info:
        llm.complete(HELLO)
    assert time.monotonic() - start < 5
    assert url in str(info.value) and "running" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)


def test_hanging_server_times_out(tmp_path: Path, sleeps: Sleeps) -> None:
    settings = Settings(home=tmp_path, llm_timeout=0.5)
    with OpenAICompatServer(lambda messages, tools: Reply("late", delay=5)) as server:
        llm = chat(server, settings, sleeps, retries=1)
        start = time.monotonic()
        with pytest.raises(LLMUnavailable, match="timeout"):
            llm.complete(HELLO)
        assert time.monotonic() - start < 3
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("name", "env_var"), [("openai:gpt-4.1", "OPENAI_API_KEY"), ("openai-compatible", "NEMO_API_KEY")]
)
def test_rejected_key_names_the_variable(settings: Settings, name: str, env_var: str) -> None:
    with OpenAICompatServer([Reply(status=401, text="Incorrect API key provided")]) as server:
        environ = {"OPENAI_API_KEY": "sk-bad", "OPENAI_BASE_URL": server.url, "NEMO_API_KEY": "sk-bad"}
        full = name if name.startswith("openai:") else f"openai-compatible:qwen@{server.url}"
        with pytest.raises(LLMRejected) as info:
            create_llm(full, settings, environ=environ).complete(HELLO)
    assert env_var in str(info.value) and "Incorrect API key" in str(info.value)
    assert len(server.chat_requests) == 1
    assert server.requests[0].headers["authorization"] == "Bearer sk-bad"


def test_unknown_model_and_bad_request_are_final(settings: Settings, sleeps: Sleeps) -> None:
    with OpenAICompatServer([Reply(status=404, text="model not found"), Reply(status=400, text="bad field")]) as s:
        llm = chat(s, settings, sleeps)
        with pytest.raises(LLMRejected, match="test-model.*/v1"):
            llm.complete(HELLO)
        with pytest.raises(LLMRejected, match="bad field"):
            llm.complete(HELLO)
    assert sleeps == [] and len(s.chat_requests) == 2


def test_invalid_json_body_is_a_bad_response(settings: Settings, sleeps: Sleeps) -> None:
    def truncated(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> Reply:
        return Reply(raw_body='{"choices": [')

    with OpenAICompatServer(truncated) as server, pytest.raises(LLMBadResponse, match="after 2 retries"):
        chat(server, settings, sleeps).complete(HELLO)
    assert len(server.chat_requests) == 3


def test_empty_choices_is_a_bad_response(settings: Settings, sleeps: Sleeps) -> None:
    empty = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []})
    with (
        OpenAICompatServer(lambda messages, tools: Reply(raw_body=empty)) as server,
        pytest.raises(LLMBadResponse, match="no choices"),
    ):
        chat(server, settings, sleeps, retries=1).complete(HELLO)


def test_official_endpoint_parameter_rules(settings: Settings) -> None:
    script = [Reply("a", usage=(1_000_000, 1_000_000)), Reply("b"), Reply("c")]
    with OpenAICompatServer(script) as server:
        env = {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": server.url}
        gpt = create_llm("openai:gpt-4.1", settings, environ=env).complete(HELLO, max_tokens=64)
        create_llm("openai:o3-mini", settings, environ=env).complete(HELLO, max_tokens=64, temperature=0.5)
        compatible = create_llm(f"openai-compatible:o3@{server.url}", settings, environ={})
        compatible.complete(HELLO, max_tokens=64, temperature=0.5)
    first, reasoning, local = server.chat_requests
    assert first["max_completion_tokens"] == 64 and first["temperature"] == 0.0 and "max_tokens" not in first
    assert reasoning["max_completion_tokens"] == 64 and "temperature" not in reasoning
    assert local["max_tokens"] == 64 and local["temperature"] == 0.5
    assert gpt.cost_usd == pytest.approx(10.0)
    assert server.requests[2].headers["authorization"] == "Bearer not-needed"


# --- retry policy -------------------------------------------------------------------------------------------


def test_transient_statuses_are_retried_and_other_4xx_are_final(settings: Settings, sleeps: Sleeps) -> None:
    transient = [Reply(status=s, text=f"status {s}") for s in (408, 409, 429, 502, 504, 529)]
    with OpenAICompatServer([*transient, Reply("ok")]) as server:
        completion = chat(server, settings, sleeps, retries=6).complete(HELLO)
    assert completion.first.text == "ok" and completion.retries == 6 and len(sleeps) == 6
    for status in (400, 403, 422):
        with OpenAICompatServer([Reply(status=status, text="no"), Reply("never sent")]) as server:
            with pytest.raises(LLMRejected, match=f"HTTP {status}"):
                chat(server, settings, sleeps, retries=6).complete(HELLO)
            assert len(server.chat_requests) == 1
    assert len(sleeps) == 6


def test_retry_after_forms(tmp_path: Path, sleeps: Sleeps) -> None:
    settings = Settings(home=tmp_path, llm_timeout=5.0, llm_backoff_max=30.0)
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    hints = [
        {"Retry-After": "7"},
        {"retry-after-ms": "250", "retry-after": "9"},  # the milliseconds form wins
        {"Retry-After": soon},
        {"Retry-After": "100"},  # capped at llm_backoff_max
        {"Retry-After": "soon"},  # unreadable: the backoff of the fifth attempt, 16 s x [0.5, 1]
    ]
    script = [Reply(status=429, headers=h) for h in hints]
    with OpenAICompatServer([*script, Reply("ok")]) as server:
        completion = chat(server, settings, sleeps, retries=5).complete(HELLO)
    assert completion.retries == 5
    assert sleeps[:2] == [7.0, 0.25] and 10.0 < sleeps[2] <= 12.0 and sleeps[3] == 30.0
    assert 8.0 <= sleeps[4] <= 16.0


def test_backoff_doubles_with_jitter_up_to_backoff_max(tmp_path: Path, sleeps: Sleeps) -> None:
    settings = Settings(home=tmp_path, llm_timeout=5.0, llm_backoff_max=10.0)
    with OpenAICompatServer([Reply(status=500)] * 6 + [Reply("ok")]) as server:
        completion = chat(server, settings, sleeps, retries=6).complete(HELLO)
    assert completion.retries == 6
    for attempt, wait in enumerate(sleeps):
        ceiling = min(10.0, 2.0**attempt)
        assert 0.5 * ceiling <= wait <= ceiling, (attempt, wait)
    assert len(set(sleeps[4:])) == 2  # capped, still jittered


def test_retries_are_logged_and_reach_the_run_store(
    settings: Settings, sleeps: Sleeps, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = RunStore(tmp_path / "nemo.db")
    store.create_run("run", tmp_path, "t", "sha")
    # One choice per request: the second is asked for again, and the retries of both requests add up.
    script = [Reply(status=503, text="loading"), Reply("a"), Reply(status=429, text="busy"), Reply("b")]
    with OpenAICompatServer([*script, Reply(status=401, text="bad key")], ignore_n=True) as server:
        recorded = RecordedLLM(chat(server, settings, sleeps), store=store, run_id="run", stage="extract")
        with caplog.at_level("WARNING", logger="nemo_opt.llm.retry"):
            assert [c.text for c in recorded.complete(HELLO, n=2, temperature=0.7).choices] == ["a", "b"]
        with pytest.raises(LLMRejected):
            recorded.complete(HELLO)
    good, bad = store.llm_calls("run")
    assert good["retries"] == 2 and good["error"] is None
    assert bad["retries"] == 0 and "bad key" in bad["error"]
    assert [r.getMessage() for r in caplog.records] == [
        f"model call failed (HTTP 503: loading); retry 1/2 in {sleeps[0]:.1f} s",
        f"model call failed (HTTP 429: busy); retry 1/2 in {sleeps[1]:.1f} s",
    ]


# --- registry -------------------------------------------------------------------------------------------------


def test_accepted_names_parse() -> None:
    env = {"OPENAI_BASE_URL": "http://proxy:1/v1"}
    assert parse_model_name("openai:gpt-4.1", environ={}) == ModelRef("openai", "gpt-4.1", None)
    assert parse_model_name("openai:gpt-4.1", environ=env).base_url == "http://proxy:1/v1"
    assert parse_model_name("anthropic:claude-sonnet-4-5", environ={}) == ModelRef("anthropic", "claude-sonnet-4-5")
    assert parse_model_name("openai-compatible:qwen@http://127.0.0.1:8080/v1/", environ={}) == ModelRef(
        "openai-compatible", "qwen", "http://127.0.0.1:8080/v1"
    )
    assert parse_model_name("openai-compatible:org/m@v2@https://h.example/v1", environ={}).model == "org/m@v2"
    assert parse_model_name("ollama:qwen2.5-coder:32b", environ={}) == ModelRef(
        "ollama", "qwen2.5-coder:32b", "http://127.0.0.1:11434/v1"
    )
    for host, url in [
        ("0.0.0.0", "http://127.0.0.1:11434/v1"),
        ("gpu:9000", "http://gpu:9000/v1"),
        ("https://o.example", "https://o.example:11434/v1"),
    ]:
        assert parse_model_name("ollama:llama3", environ={"OLLAMA_HOST": host}).base_url == url


@pytest.mark.parametrize(
    "name", ["gpt-4.1", "scripted:", "openai:", "openai-compatible:qwen", "openai-compatible:q@ftp://h/v1", "x:y"]
)
def test_bad_names_list_the_accepted_forms(name: str) -> None:
    with pytest.raises(ModelNotConfigured) as info:
        parse_model_name(name, environ={})
    message = str(info.value)
    assert "openai:gpt-4.1" in message and "openai-compatible:qwen@http://127.0.0.1:8080/v1" in message
    assert "ollama:" in message and "anthropic:" in message


def test_bare_model_name_gets_a_hint(settings: Settings) -> None:
    with pytest.raises(ModelNotConfigured, match="Did you mean openai:gpt-4.1"):
        create_llm("gpt-4.1", settings, environ={})
    with pytest.raises(ModelNotConfigured, match="No model configured"):
        create_llm("", settings, environ={})


@pytest.mark.parametrize(
    ("name", "var"), [("openai:gpt-4.1", "OPENAI_API_KEY"), ("anthropic:claude-opus-4", "ANTHROPIC_API_KEY")]
)
def test_missing_key_names_the_variable(settings: Settings, name: str, var: str) -> None:
    with pytest.raises(ModelNotConfigured) as info:
        create_llm(name, settings, environ={})
    assert f"export {var}=" in str(info.value)
    assert "--model openai-compatible:qwen@http://127.0.0.1:8080/v1" in str(info.value)


def test_create_builds_the_right_backend(settings: Settings) -> None:
    env = {"ANTHROPIC_API_KEY": "k", "NEMO_API_KEY": "local"}
    claude = create_llm("anthropic:claude-haiku-4-5", settings, environ=env)
    assert isinstance(claude, AnthropicChat) and claude.name == "anthropic:claude-haiku-4-5"
    local = create_llm("ollama:llama3", settings, environ=env)
    assert isinstance(local, OpenAIChat) and local.base_url == "http://127.0.0.1:11434/v1"
    assert local.key_env == "NEMO_API_KEY" and not local.official


def test_anthropic_missing_extra(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)
    with pytest.raises(MissingExtra, match=r"pip install 'nemo-opt\[anthropic\]'"):
        create_llm("anthropic:claude-sonnet-4", settings, environ={"ANTHROPIC_API_KEY": "k"})


# --- Anthropic backend (SDK client replaced by a recording fake) ------------------------------------------


def _anthropic_message(*blocks: Any, stop: str = "end_turn") -> SimpleNamespace:
    usage = SimpleNamespace(input_tokens=100, output_tokens=20, cache_read_input_tokens=None)
    return SimpleNamespace(content=list(blocks), stop_reason=stop, usage=usage, model="claude-sonnet-4-5-20250929")


class FakeAnthropic:
    """Stands in for ``anthropic.Anthropic``: records constructor and create() kwargs, answers from a list."""

    instances: list[FakeAnthropic] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[dict[str, Any]] = []
        self.outcomes: list[Any] = []
        self.messages = SimpleNamespace(create=self._create)
        FakeAnthropic.instances.append(self)

    def _create(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> type[FakeAnthropic]:
    FakeAnthropic.instances = []
    monkeypatch.setattr(anthropic, "Anthropic", FakeAnthropic)
    return FakeAnthropic


def _status_error(cls: type[anthropic.APIStatusError], status: int, message: str, **headers: str) -> Exception:
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    response = httpx2.Response(status, headers=headers, request=request)
    return cls(message, response=response, body={"type": "error", "error": {"type": "x", "message": message}})


def test_anthropic_conversion_and_parsing(settings: Settings, fake_anthropic: type[FakeAnthropic]) -> None:
    llm = AnthropicChat("claude-sonnet-4-5", settings, api_key="k", policy=RetryPolicy(0, 1.0))
    client = fake_anthropic.instances[0]
    assert client.kwargs["max_retries"] == 0 and client.kwargs["timeout"] == settings.llm_timeout
    text = SimpleNamespace(type="text", text="Let me look.")
    use = SimpleNamespace(type="tool_use", id="toolu_1", name="bash", input={"command": "ls"})
    client.outcomes = [_anthropic_message(text, use, stop="tool_use"), _anthropic_message(text)]
    history = [
        Message("system", "Be brief."),
        Message("user", "List files."),
        Message("assistant", "", (ToolCall("t1", "bash", '{"command": "ls"}'), ToolCall("t2", "bash", "{oops"))),
        Message("tool", "a.txt", tool_call_id="t1"),
        Message("tool", "b.txt", tool_call_id="t2"),
        Message("user", "And now?"),
    ]
    completion = llm.complete(history, tools=[BASH], temperature=1.5, n=2)
    request = client.calls[0]
    assert request["system"] == "Be brief." and request["max_tokens"] == 8192 and request["temperature"] == 1.0
    assert request["tools"] == [{"name": "bash", "description": BASH.description, "input_schema": BASH.parameters}]
    assert request["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "List files."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}},
                {"type": "tool_use", "id": "t2", "name": "bash", "input": {"raw_arguments": "{oops"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a.txt"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "b.txt"},
                {"type": "text", "text": "And now?"},
            ],
        },
    ]
    assert len(client.calls) == 2
    first, second = completion.choices
    assert first.text == "Let me look." and first.finish_reason == "tool_calls"
    assert first.tool_calls == (ToolCall("toolu_1", "bash", '{"command": "ls"}'),)
    assert second.finish_reason == "stop" and not second.tool_calls
    assert completion.usage == Usage(200, 40)
    assert completion.cost_usd == pytest.approx((200 * 3 + 40 * 15) / 1e6)


def test_anthropic_retries_and_errors(settings: Settings, fake_anthropic: type[FakeAnthropic], sleeps: Sleeps) -> None:
    llm = AnthropicChat("claude-opus-4", settings, api_key="k", policy=RetryPolicy(2, 5.0, sleep=sleeps))
    client = fake_anthropic.instances[0]
    ok = _anthropic_message(SimpleNamespace(type="text", text="fine"))
    client.outcomes = [_status_error(anthropic.RateLimitError, 429, "slow down", **{"retry-after": "3"}), ok]
    assert llm.complete(HELLO, max_tokens=10).retries == 1 and sleeps == [3.0]
    assert client.calls[-1]["max_tokens"] == 10
    client.outcomes = [_status_error(anthropic.AuthenticationError, 401, "invalid x-api-key")]
    with pytest.raises(LLMRejected, match="ANTHROPIC_API_KEY"):
        llm.complete(HELLO)
    request = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
    client.outcomes = [anthropic.APIConnectionError(request=request)] * 3
    with pytest.raises(LLMUnavailable, match="api.anthropic.com"):
        llm.complete(HELLO)


# --- reply cache ----------------------------------------------------------------------------------------------


def _completion(text: str = "x = 1") -> Completion:
    choice = Choice(text=text, tool_calls=(ToolCall("call_1", "bash", '{"command": "ls"}'),), finish_reason="stop")
    return Completion(choices=(choice,), usage=Usage(11, 7), model="gpt-4.1", seconds=2.5, cost_usd=0.01)


def test_request_key_covers_everything() -> None:
    base: dict[str, Any] = {
        "model": "m",
        "messages": HELLO,
        "tools": [BASH],
        "temperature": 0.0,
        "n": 1,
        "max_tokens": None,
    }
    key = request_key(**base)
    assert key == request_key(**{**base, "messages": list(HELLO), "temperature": 0})
    variants: list[dict[str, Any]] = [
        {"messages": [HELLO[0], Message("user", "Say hello.")]},
        {"temperature": 0.2},
        {"tools": None},
        {"model": "m2"},
        {"n": 2},
        {"max_tokens": 100},
    ]
    keys = {request_key(**{**base, **v}) for v in variants} | {request_key(**base, salt="sample-1")}
    assert key not in keys and len(keys) == len(variants) + 1


def test_cache_round_trip_and_stats(tmp_path: Path) -> None:
    with ReplyCache(tmp_path / "cache" / "llm.db") as cache:
        assert cache.get("k") is None
        cache.put("k", _completion())
        hit = cache.get("k")
        assert hit is not None and hit.cached and hit.seconds == 0
        assert hit.choices == _completion().choices and hit.usage == Usage(11, 7) and hit.model == "gpt-4.1"
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.misses) == (1, 1, 1) and stats.size_bytes > 0
        assert cache.clear() == 1 and cache.stats().entries == 0


def test_cache_ignores_corrupt_rows(tmp_path: Path) -> None:
    path = tmp_path / "llm.db"
    with ReplyCache(path) as cache:
        cache.put("good", _completion())
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO replies VALUES ('bad', 'now', 'm', '{not json')")
            conn.execute("INSERT INTO replies VALUES ('shape', 'now', 'm', '{\"usage\": {}}')")
        assert cache.get("bad") is None and cache.get("shape") is None
        assert cache.get("good") is not None
        cache.put("bad", _completion("fixed"))
        fixed = cache.get("bad")
        assert fixed is not None and fixed.first.text == "fixed"


def test_cache_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "llm.db"
    shared = ReplyCache(path)
    others = [ReplyCache(path) for _ in range(2)]

    def write(cache: ReplyCache, worker: int) -> None:
        for i in range(25):
            cache.put(f"{worker}-{i}", _completion(f"{worker}/{i}"))
            assert cache.get(f"{worker}-{i}") is not None

    threads = [threading.Thread(target=write, args=(shared, w)) for w in range(6)]
    threads += [threading.Thread(target=write, args=(c, 10 + w)) for w, c in enumerate(others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.stats().entries == 8 * 25
    for cache in [shared, *others]:
        cache.close()


def test_unusable_cache_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "llm.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="Delete the file"):
        ReplyCache(path)


# --- pricing ------------------------------------------------------------------------------------------------------


def test_pricing_prefix_matching() -> None:
    assert price_for("gpt-4.1-2025-04-14") == price_for("gpt-4.1") == Price(2.0, 8.0)
    assert price_for("gpt-4.1-mini-2025-04-14") == Price(0.40, 1.60)
    assert price_for("claude-sonnet-4-5-20250929") == price_for("claude-sonnet-4-5")
    assert price_for("claude-sonnet-4-20250514") == Price(3.0, 15.0)
    assert price_for("openai/gpt-4o-mini") == Price(0.15, 0.60)
    assert price_for("o3x") is None and price_for("qwen2.5-coder:32b") is None
    assert cost_usd("gpt-4.1", Usage(1_000_000, 500_000)) == pytest.approx(6.0)
    assert cost_usd("llama3", Usage(10, 10)) is None
    assert cost_usd("llama3", Usage(1_000_000, 0), prices={"llama3": Price(1.0, 0.0)}) == pytest.approx(1.0)

"""A loopback OpenAI-compatible HTTP server answering from a script, for tests that go through the real SDK.

Usage::

    with OpenAICompatServer([Reply("hello")]) as server:
        llm = OpenAIChat("scripted", settings, api_key="x", base_url=server.url)
        assert llm.complete([Message("user", "hi")]).first.text == "hello"
        assert server.chat_requests[0]["messages"][0]["content"] == "hi"

Replies can inject faults: an error ``status`` (with an OpenAI-style error body), ``headers`` such as
``Retry-After``, a ``delay`` before answering, or a ``raw_body`` sent verbatim. A :class:`Hangup` reply
closes the connection without answering (or after part of the body), and a server started with
``listening=False`` holds its port without accepting, so connections are refused until :meth:`listen`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from nemo_opt.testing.scripted import Reply, Script, as_script_function, estimate_tokens, reply_usage

__all__ = ["Hangup", "OpenAICompatServer", "RecordedRequest"]


@dataclass
class Hangup(Reply):
    """A server-only fault: after ``delay``, drop the connection instead of answering.

    ``partial`` sends the status line, headers and that many bytes of a body announced as longer, so the
    client sees the connection end in the middle of the reply; None closes before sending a byte.
    :class:`~nemo_opt.testing.scripted.ScriptedLLM` treats it as an ordinary (empty) reply.
    """

    partial: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the server received: header names lower-cased, ``body`` the parsed JSON or None."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: bytes
    headers: dict[str, str]
    delay: float = 0.0
    hangup: int | None = None  # None: answer; -1: close at once; n >= 0: close after n bytes of the body


def _json_answer(status: int, data: Any, headers: dict[str, str] | None = None, delay: float = 0.0) -> _Answer:
    return _Answer(status, json.dumps(data).encode("utf-8"), headers or {}, delay)


def _error_answer(status: int, message: str, headers: dict[str, str] | None = None, delay: float = 0.0) -> _Answer:
    kind = "server_error" if status >= 500 else "rate_limit_error" if status == 429 else "invalid_request_error"
    error = {"message": message or HTTPStatus(status).phrase, "type": kind, "param": None, "code": None}
    return _json_answer(status, {"error": error}, headers, delay)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes the connection after each answer, so no keep-alive thread outlives the server.
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log."""

    def _serve(self, method: str) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        owner = self.server.owner
        owner.record(RecordedRequest(method, path, {k.lower(): v for k, v in self.headers.items()}, body))
        answer = owner.answer(method, path, body, bad_json=bool(raw) and body is None)
        if answer.delay > 0 and owner.stopping.wait(answer.delay):
            return
        if answer.hangup is not None:
            self._hang_up(answer)
            return
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. its timeout fired during a scripted delay); nothing left to do.
            return

    def _hang_up(self, answer: _Answer) -> None:
        """Drop the connection: at once, or after the headers and ``answer.hangup`` bytes of a longer body."""
        self.close_connection = True
        try:
            if answer.hangup is not None and answer.hangup >= 0:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(max(len(answer.payload), answer.hangup + 1)))
                self.end_headers()
                self.wfile.write(answer.payload[: answer.hangup])
                self.wfile.flush()
            # shutdown() rather than close(): the socket server closes the socket itself afterwards.
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: OpenAICompatServer) -> None:
        self.owner = owner
        # Bound now, listening later: until server_activate() the kernel refuses connections to the port.
        super().__init__(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        try:
            self.server_bind()
        except OSError:
            self.server_close()
            raise


class OpenAICompatServer:
    """OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models`` on 127.0.0.1, answering from a script.

    ``n`` in a request calls the script ``n`` times, unless ``ignore_n`` (like llama.cpp, one choice per
    request). The first reply of a request decides its faults. Script errors (such as
    :class:`~nemo_opt.testing.scripted.ScriptExhausted`) are answered with HTTP 400, so the client fails at
    once instead of retrying, and re-raised when the ``with`` block ends without another exception.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        model: str = "scripted",
        ignore_n: bool = False,
        embed: Callable[[list[str]], list[list[float]]] | None = None,
        listening: bool = True,
    ) -> None:
        """``embed`` answers ``POST /v1/embeddings`` (texts in, one vector per text out); without it that route
        is a 404, like a chat-only server. ``listening=False`` makes :meth:`start` reserve the port without
        accepting connections (clients get "connection refused") until :meth:`listen` is called."""
        self.model = model
        self.listening = listening
        self.ignore_n = ignore_n
        self._embed = embed
        self.stopping = threading.Event()
        self.errors: list[Exception] = []
        self._script = as_script_function(script if script is not None else [])
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._next_id = 0
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client, ``http://127.0.0.1:PORT/v1``."""
        if self._httpd is None:
            raise RuntimeError("the server is not running; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat-completion requests received so far."""
        return [r.body for r in self.requests if r.path == "/v1/chat/completions" and isinstance(r.body, dict)]

    def record(self, request: RecordedRequest) -> None:
        """Append ``request`` to :attr:`requests` (called by the handler threads)."""
        with self._lock:
            self._requests.append(request)

    def _call_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"call_{self._next_id}"

    def answer(self, method: str, path: str, body: Any, *, bad_json: bool = False) -> _Answer:
        """The answer to one request."""
        if method == "GET" and path == "/v1/models":
            model = {"id": self.model, "object": "model", "created": int(time.time()), "owned_by": "nemo-opt"}
            return _json_answer(200, {"object": "list", "data": [model]})
        if method == "POST" and path == "/v1/embeddings" and self._embed is not None:
            return self._embeddings(body, bad_json)
        if method != "POST" or path != "/v1/chat/completions":
            return _error_answer(404, f"no route for {method} {path}")
        if bad_json or not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error_answer(400, "the request body must be a JSON object with a 'messages' list")
        try:
            return self._chat(body)
        except Exception as exc:
            with self._lock:
                self.errors.append(exc)
            return _error_answer(400, f"scripted server: the script raised {type(exc).__name__}: {exc}")

    def _embeddings(self, body: Any, bad_json: bool) -> _Answer:
        if bad_json or not isinstance(body, dict) or "input" not in body:
            return _error_answer(400, "the request body must be a JSON object with an 'input'")
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        assert self._embed is not None
        try:
            vectors = self._embed([str(t) for t in texts])
        except Exception as exc:
            with self._lock:
                self.errors.append(exc)
            return _error_answer(400, f"scripted server: the embed function raised {type(exc).__name__}: {exc}")
        data = [{"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(vectors)]
        tokens = sum(estimate_tokens(str(t)) for t in texts)
        return _json_answer(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model") or self.model),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _chat(self, body: dict[str, Any]) -> _Answer:
        messages: list[dict[str, Any]] = body["messages"]
        tools = body.get("tools") or None
        first = self._script(messages, tools)
        if isinstance(first, Hangup):
            hangup = -1 if first.partial is None else max(0, first.partial)
            payload = (first.raw_body or '{"id": "chatcmpl-cut", "object": "chat.completion", "choices": [').encode()
            return _Answer(first.status, payload, first.headers, first.delay, hangup)
        if first.status != 200:
            return _error_answer(first.status, first.text, first.headers, first.delay)
        if first.raw_body is not None:
            return _Answer(200, first.raw_body.encode("utf-8"), first.headers, first.delay)
        n = 1 if self.ignore_n else max(1, int(body.get("n") or 1))
        replies = [first] + [self._script(messages, tools) for _ in range(n - 1)]
        choices = []
        prompt = completion = 0
        for index, reply in enumerate(replies):
            calls = [
                {"id": self._call_id(), "type": "function", "function": {"name": name, "arguments": args}}
                for name, args in reply.arguments()
            ]
            message: dict[str, Any] = {"role": "assistant", "content": reply.text or (None if calls else "")}
            if calls:
                message["tool_calls"] = calls
            choices.append({"index": index, "message": message, "finish_reason": reply.finish})
            reply_prompt, reply_completion = reply_usage(reply, messages)
            prompt = prompt or reply_prompt
            completion += reply_completion
        data = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": choices,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        return _json_answer(200, data, first.headers, first.delay)

    def start(self) -> OpenAICompatServer:
        """Bind a free port and serve in a background thread (unless created with ``listening=False``)."""
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self.stopping.clear()
        self._httpd = _Server(self)
        if self.listening:
            self._serve()
        return self

    def listen(self) -> None:
        """Start accepting connections on the reserved port (for a server created with ``listening=False``)."""
        if self._httpd is None:
            raise RuntimeError("the server is not running; use it as a context manager or call start()")
        if self._thread is None:
            self.listening = True
            self._serve()

    def _serve(self) -> None:
        assert self._httpd is not None
        self._httpd.server_activate()
        # A short poll interval keeps close() fast: shutdown() waits for the serving loop to notice.
        serve = partial(self._httpd.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="openai-compat-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving, wake any delayed answers, and release the port."""
        if self._httpd is None:
            return
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        if exc_type is None and self.errors:
            raise self.errors[0]

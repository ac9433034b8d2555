"""A small OpenAI-compatible HTTP server on loopback, scriptable per request, for tests.

It speaks just enough of the protocol that ``OpenAIBackend`` (through the real
``openai`` client over real HTTP) can be tested end to end:

* ``POST /v1/chat/completions`` and ``POST /v1/completions`` with ``stream: true``:
  Server-Sent Events (``data: {...}\\n\\n`` … ``data: [DONE]\\n\\n``), sent with
  chunked transfer encoding, one chunk per whitespace token;
* ``logprobs`` (chat: ``logprobs``/``top_logprobs``; completions: ``logprobs: n``),
  drawn from a fixed distribution ``dist`` so tests can compute the expected values;
* ``max_tokens`` (→ ``finish_reason: "length"``), ``stop`` strings, and ``usage`` in
  a last chunk when ``stream_options.include_usage`` is set, with
  ``prompt_tokens_details.cached_tokens``: the longest prefix (in whitespace tokens of
  the JSON prompt) shared with an earlier request, as a prefix cache would report;
* many requests at once (one thread each, a listen backlog of 256), each reply
  optionally paced by a per-token ``delay``.

Behaviour is scripted with :meth:`OpenAIServer.plan` (a queue, one action per
request) and :attr:`OpenAIServer.default` (used when the queue is empty):
:class:`Reply`, :class:`Status` (e.g. 429, 500), :class:`Slow`, :class:`Malformed`,
:class:`BrokenStream`, :class:`CutStream`, or a function ``body -> action`` (requests
sent concurrently arrive in any order, so choose by content: :func:`last_text`).
Every request is recorded in :attr:`OpenAIServer.requests` (path, headers, JSON
body, raw bytes, arrival time); :attr:`OpenAIServer.max_in_flight` is the most
requests it has served at once.

Non-goals: non-streaming replies, tools, images, embeddings, authentication checks.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union


@dataclass
class Reply:
    """Stream ``text`` (or ``text(body)``) one whitespace token per SSE chunk.

    ``dist`` is the probability of the chosen token followed by its alternatives
    (``alt1``, ``alt2`` …), the same for every token.
    """

    text: Union[str, Callable[[dict], str]] = "Hello from the test server."
    dist: tuple[float, ...] = (0.6, 0.3, 0.1)
    finish_reason: str = "stop"
    delay: float = 0.0  # seconds before each token, as a model computing it would take
    honours_stop: bool = True  # False: ignore the request's `stop` strings, as some servers do


@dataclass
class Status:
    """Answer with an HTTP error status and an OpenAI-style error body."""

    code: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=lambda: {"retry-after-ms": "10"})


@dataclass
class Slow:
    """Wait ``seconds`` before answering (with ``then``)."""

    seconds: float
    then: Any = field(default_factory=Reply)


@dataclass
class Malformed:
    """Answer 200 ``application/json`` with a body that is not JSON."""

    body: str = '{"id": "cmpl-1", "choices": [ this is not json'


@dataclass
class BrokenStream:
    """Stream ``good`` tokens of ``reply``, then an SSE event whose data is not JSON."""

    good: int = 2
    reply: Reply = field(default_factory=Reply)


@dataclass
class CutStream:
    """Stream ``good`` tokens of ``reply``, then drop the connection mid-body."""

    good: int = 2
    reply: Reply = field(default_factory=Reply)


@dataclass
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    at: float = 0.0  # time.monotonic() when it arrived


def tokens_of(text: str) -> list[str]:
    """Whitespace tokens that join back to ``text`` (leading space kept)."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def last_text(body: dict) -> str:
    """The last message's content of a chat request, or a completions request's prompt."""
    messages = body.get("messages")
    return messages[-1]["content"] if messages else str(body.get("prompt", ""))


class OpenAIServer:
    """A threaded loopback server; use as a context manager or ``start()``/``stop()``.

    Examples
    --------
    >>> with OpenAIServer() as server:                    # doctest: +SKIP
    ...     server.plan(Status(429), Reply("ok"))
    ...     OpenAIBackend("m", server.url).generate_one("hi").text
    'ok'
    """

    def __init__(self) -> None:
        self.default: Any = Reply()
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._seen: list[list[str]] = []  # prompts' tokens, for the cached-prefix count
        self._queue: list[Any] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def plan(self, *actions: Any) -> None:
        """Queue actions, one per coming request (then :attr:`default` applies)."""
        with self._lock:
            self._queue.extend(actions)

    def next_action(self, recorded: Recorded) -> Any:
        with self._lock:
            self.requests.append(recorded)
            action = self._queue.pop(0) if self._queue else self.default
        return action(recorded.body) if callable(action) else action

    def busy(self, change: int) -> None:
        """Count a request in (+1) or out (-1) of service."""
        with self._lock:
            self.in_flight += change
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def cached(self, tokens: list[str]) -> int:
        """Tokens of the longest prefix ``tokens`` shares with an earlier prompt; remembers it."""
        with self._lock:
            best = max((_common(tokens, seen) for seen in self._seen), default=0)
            self._seen.append(tokens)
        return best

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (keeps teardown quick)."""
        self._stopping.wait(seconds)

    def start(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 stalls a burst of concurrent connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up is expected
            super().handle_error(request, client_address)


def _handler_for(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections close, so handler threads end
    owner: OpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        body = json.loads(raw or b"{}")
        recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw,
                            time.monotonic())
        self.owner.busy(+1)
        try:
            self.act(self.owner.next_action(recorded), body)
        finally:
            self.owner.busy(-1)

    def act(self, action: Any, body: dict) -> None:
        if isinstance(action, Slow):
            self.owner.sleep(action.seconds)
            return self.act(action.then, body)
        if isinstance(action, Status):
            return self.send_error_json(action)
        if isinstance(action, Malformed):
            return self.send_bytes(200, "application/json", action.body.encode())
        if isinstance(action, (BrokenStream, CutStream)):
            return self.stream(action.reply, body, cut=action)
        return self.stream(action, body)

    def send_bytes(self, code: int, ctype: str, data: bytes, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, status: Status) -> None:
        error = {"error": {"message": status.message, "type": HTTPStatus(status.code).phrase,
                           "code": status.code}}
        self.send_bytes(status.code, "application/json", json.dumps(error).encode(), status.headers)

    # -- streaming ---------------------------------------------------------------------------------

    def stream(self, reply: Reply, body: dict, cut: Any = None) -> None:
        text = reply.text(body) if callable(reply.text) else reply.text
        tokens, finish = _shape(text, body if reply.honours_stop else {**body, "stop": None}, reply.finish_reason)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cached = self.owner.cached(_prompt_tokens(body))
        for i, token in enumerate(tokens):
            if cut is not None and i == cut.good:
                return self.cut(cut)
            self.owner.sleep(reply.delay)
            self.event(_chunk(body, self.path, token, reply.dist, None))
        self.event(_chunk(body, self.path, "", reply.dist, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.event(_usage_chunk(body, len(tokens), cached))
        self.event("[DONE]")
        self.write_chunk(b"")

    def cut(self, action: Any) -> None:
        if isinstance(action, BrokenStream):
            self.event('{"choices": [{"index": 0, "delta": {"content": "x"')
            self.write_chunk(b"")
            return
        self.wfile.flush()
        self.close_connection = True  # no terminating chunk: the client sees a broken body

    def event(self, data: Union[dict, str]) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        self.write_chunk(f"data: {payload}\n\n".encode())

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def _shape(text: str, body: dict, finish: str) -> tuple[list[str], str]:
    stops = body.get("stop") or []
    stops = [stops] if isinstance(stops, str) else stops
    hits = [text.find(s) for s in stops if s and s in text]
    text = text[: min(hits)] if hits else text
    tokens = tokens_of(text)
    limit = body.get("max_tokens")
    if limit is not None and len(tokens) > limit:
        return tokens[:limit], "length"
    return tokens, finish


def _chunk(body: dict, path: str, token: str, dist: tuple[float, ...], finish: str | None) -> dict:
    chat = path.endswith("/chat/completions")
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    lp = _logprobs(body, chat, token, dist) if token else None
    if chat:
        choice["delta"] = {"role": "assistant", "content": token} if token else {}
        choice["logprobs"] = lp
    else:
        choice["text"], choice["logprobs"] = token, lp
    kind = "chat.completion.chunk" if chat else "text_completion"
    return {"id": "cmpl-test", "object": kind, "created": int(time.time()),
            "model": body.get("model", ""), "choices": [choice]}


def _logprobs(body: dict, chat: bool, token: str, dist: tuple[float, ...]) -> dict | None:
    if chat and not body.get("logprobs"):
        return None
    n = body.get("top_logprobs", 0) if chat else body.get("logprobs")
    if n is None:
        return None
    names = [token] + [f"alt{i}" for i in range(1, len(dist))]
    top = [(name, math.log(p)) for name, p in zip(names, dist)][: int(n)]
    if chat:
        alts = [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top]
        return {"content": [{"token": token, "logprob": math.log(dist[0]),
                             "bytes": list(token.encode()), "top_logprobs": alts}]}
    return {"tokens": [token], "token_logprobs": [math.log(dist[0])],
            "top_logprobs": [dict(top)], "text_offset": [0]}


def prompt_tokens(body: dict) -> int:
    """The ``usage.prompt_tokens`` this server reports for a request body."""
    return len(_prompt_tokens(body))


def _prompt_tokens(body: dict) -> list[str]:
    return tokens_of(json.dumps(body.get("messages") or body.get("prompt") or ""))


def _common(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _usage_chunk(body: dict, completion_tokens: int, cached: int) -> dict:
    used = prompt_tokens(body)
    return {"id": "cmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", ""), "choices": [],
            "usage": {"prompt_tokens": used, "completion_tokens": completion_tokens,
                      "total_tokens": used + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}}}

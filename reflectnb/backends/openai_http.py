"""A backend for OpenAI-compatible HTTP servers: vLLM, SGLang, llama.cpp server, Ollama, OpenAI.

Contract
--------
* Chat prompts (``list[Message]``) go to ``/chat/completions``; raw strings go to the
  legacy ``/completions`` endpoint. If the server answers 404 there (OpenAI chat models,
  some proxies), the backend sends raw strings as one user message to the chat endpoint
  from then on; ``Generation.params["endpoint"]`` says which endpoint served each result.
* Every request streams (SSE). Each streamed piece becomes a :class:`TokenEvent`
  (``token_id`` is -1: the protocol carries no ids). With ``logprobs`` the server's
  per-token log-probabilities fill ``TokenEvent.logprob`` / ``top``; ``entropy`` is only
  estimated when the returned alternatives cover at least ``ENTROPY_MASS`` of the
  probability (else ``None`` rather than a guess).
* ``generate(prompts)`` keeps up to ``concurrency`` requests in flight (default 16; the
  model string ``openai:<model>@<url>?concurrency=8``, ``load_model(..., concurrency=8)``
  or ``%config ReflectMagics.concurrency = 8``), so ``can_batch`` is true and a serving
  engine batches them. Results come back in input order; every row's tokens reach
  ``on_token`` as they arrive, with their ``row``, on the calling thread; the requests
  themselves run on ``AsyncOpenAI`` in a private event loop (``openai_pool``).
* A refused connection, a timeout, 408/409/429 or a 5xx is retried per request, waiting
  what ``Retry-After`` asks, else backing off; ``max_retries`` extra tries, then it fails.
* The API key is read from the environment variable ``api_key_env`` at each call (never
  stored on the backend); ``"EMPTY"`` is sent when it is unset. Names, errors and
  traces show the URL without credentials and never the key.
* Every failure is one :class:`BackendError` naming the server, the model and what
  happened (the first failed row's, with how many rows failed). A failed row loses no
  other row: ``err.partial`` holds every row in order, the failed ones with
  ``finish_reason="error"`` and the text they streamed. Ctrl-C (or ``KeyboardInterrupt``
  from ``on_token``) cancels what is in flight and raises :class:`GenerationInterrupted`
  with every row: finished, or ``"interrupted"`` with what arrived.
* Messages are sent exactly as given (``role`` and ``content``), so a conversation that
  grows by appending keeps a byte-identical prefix and a server's prefix cache hits;
  ``Generation.cached_tokens`` records ``usage.prompt_tokens_details.cached_tokens``.

Non-goals: logits processors (no code runs per token over HTTP), tools, non-streaming replies.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from reflectnb.backends.base import (Backend, GenerationInterrupted, GenerationParams, Prompt,
                                     TokenCallback, as_messages)
from reflectnb.backends.openai_errors import describe
from reflectnb.backends.openai_pool import (RETRIED_STATUS, GaveUp, RequestPool, check_concurrency,
                                             default_concurrency, split_concurrency, with_retries)
from reflectnb.backends.openai_stream import StreamRun, entropy_from_top  # noqa: F401 (re-exported)
from reflectnb.errors import BackendError, CapabilityError, OptionError
from reflectnb.trace import Generation, Message

PLACEHOLDER_KEY = "EMPTY"


def safe_url(url: str) -> str:
    """``url`` without ``user:password@``, query or fragment, safe to show.

    >>> safe_url("http://bob:s3cret@127.0.0.1:8000/v1/?key=abc")
    'http://127.0.0.1:8000/v1'
    """
    parts = urllib.parse.urlsplit(url.strip())
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    host += f":{parts.port}" if parts.port else ""
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _strip_userinfo(text: str) -> str:
    return re.sub(r"(\w+://)[^/@\s]*@", r"\1", text)


class OpenAIBackend(Backend):
    """Generations from an OpenAI-compatible server, streamed token by token, many at once.

    Parameters
    ----------
    model : str
        The model name the server knows (``"llama3.2"``, ``"Qwen/Qwen2.5-0.5B-Instruct"``).
    base_url : str
        The API root, usually ending in ``/v1`` (``"http://127.0.0.1:8000/v1"``). A
        ``?concurrency=N`` query sets ``concurrency`` (and is not sent to the server).
    api_key_env : str
        Environment variable holding the API key (default ``OPENAI_API_KEY``).
    timeout : float
        Seconds to wait for the server (to connect, and between streamed chunks).
    max_retries : int
        Extra tries per request after a refused connection, a timeout, 408/409/429 or a 5xx.
    name : str, optional
        Name in traces; defaults to ``"openai:<model>@<base_url>"``.
    logprobs : bool
        Ask the server for log-probabilities (switch off for servers that refuse them).
    concurrency : int, optional
        Requests in flight at once; ``None`` follows ``%config ReflectMagics.concurrency``
        (default 16).

    Examples
    --------
    >>> model = OpenAIBackend("llama3.2", "http://127.0.0.1:11434/v1")   # doctest: +SKIP
    >>> model.generate_one([Message("user", "2+3?")]).text                 # doctest: +SKIP
    '2 + 3 = 5.'
    """

    can_stream = True
    can_batch = True
    can_process_logits = False
    has_logprobs = True

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, max_retries: int = 2, name: str | None = None,
                 logprobs: bool = True, concurrency: int | None = None):
        base_url, in_url = split_concurrency(str(base_url))
        _check_settings(model, base_url, timeout, max_retries)
        self.model = model
        self.base_url = safe_url(base_url)
        self._base_url = base_url.strip().rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.logprobs = logprobs
        self.concurrency = check_concurrency(concurrency) if concurrency is not None else in_url
        self.name = _strip_userinfo(name) if name else f"openai:{model}@{self.base_url}"
        self.raw_endpoint = "completions"  # becomes "chat" if the server has no /completions
        self._http: Any = None  # the connection pool, made on first use

    def check_params(self, params: GenerationParams) -> None:
        """Refuse logits processors (naming the ``logit_bias`` fallback) and bad ``logit_bias``."""
        if params.logits_processors:
            names = ", ".join(type(p).__name__ for p in params.logits_processors)
            raise CapabilityError(
                f"the {self.name!r} backend cannot apply logits processors ({names}): an HTTP "
                "server runs no Python code per token, so position-dependent schedules cannot run "
                "there. Use a local model ('smollm2-135m' or 'hf:<path>'); for a constant bias on "
                "token ids pass GenerationParams(extra={'logit_bias': {token_id: bias}})")
        _check_logit_bias(params.extra.get("logit_bias"))

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        params = params or GenerationParams()
        self.check_params(params)
        runs = [StreamRun(row, prompt) for row, prompt in enumerate(prompts)]
        done: list[Generation | None] = [None] * len(runs)
        failed: dict[int, BackendError] = {}
        client = self._client()
        pool = RequestPool(len(runs), self.in_flight(),
                           lambda row, emit: self._stream(client, runs[row], params, emit))
        try:
            for kind, row, payload in pool.events():
                self._take(runs[row], kind, payload, params, on_token, done, failed)
        except KeyboardInterrupt:
            raise GenerationInterrupted([gen or self._result(run, params, "interrupted")
                                         for gen, run in zip(done, runs)]) from None
        finally:
            pool.cancel()  # after Ctrl-C or a raising on_token: stop what is still in flight
        if failed:
            raise self._gather(failed, done, runs, params)
        return done  # type: ignore[return-value]

    def in_flight(self) -> int:
        """How many requests :meth:`generate` keeps in flight: ``concurrency``, else the default."""
        return self.concurrency or default_concurrency()

    # -- the calling thread: stream events in, token events out ---------------------------------------

    def _take(self, run: StreamRun, kind: str, payload: Any, params: GenerationParams,
              on_token: TokenCallback | None, done: list, failed: dict[int, BackendError]) -> None:
        if kind == "item" and isinstance(payload, _Opened):
            run.opened, run.endpoint, run.start = True, payload.endpoint, payload.sent
        elif kind == "item" and not run.stopped:
            for event in run.add(payload):
                if on_token is not None:
                    on_token(event)
            if params.stop:
                run.cut_at_stop(params.stop)  # for servers that ignore `stop`; its task then hangs up
        elif kind == "item":
            pass  # what the server sent after a stop string
        elif run.stopped or (kind == "done" and run.finish is not None):
            done[run.row] = self._result(run, params, "length" if run.finish == "length" else "stop")
        elif kind == "done":
            failed[run.row] = self._failure("ended the stream without a finish_reason", run)
        else:
            failed[run.row] = payload if isinstance(payload, BackendError) else self._error(payload, run)

    def _gather(self, failed: dict[int, BackendError], done: list, runs: list[StreamRun],
                params: GenerationParams) -> BackendError:
        """The first failed row's error, saying how many failed; every row is in ``err.partial``."""
        err = failed[min(failed)]
        if len(runs) > 1:
            rows = ", ".join(str(r) for r in sorted(failed))
            err.args = (f"{err} [{len(failed)} of {len(runs)} rows failed (row {rows}); the other rows "
                        "are in `err.partial` too]",)
        err.partial = [gen or self._result(run, params, "error")  # type: ignore[attr-defined]
                       for gen, run in zip(done, runs)]
        return err

    def _result(self, run: StreamRun, params: GenerationParams, reason: str) -> Generation:
        return run.generation(self.name, reason, {**params.to_dict(), "endpoint": run.endpoint})

    # -- on the request loop: one request, retried until it streams -----------------------------------

    def _client(self) -> Any:
        """An async client with this call's key, over the backend's one connection pool (no key in it).

        Building a pool loads the system's CA certificates (~60 ms), and kept-alive
        connections save a handshake per request, so one pool serves every call.
        """
        import openai  # lazy: `import reflectnb` must stay light

        if self._http is None:
            self._http = openai.DefaultAsyncHttpxClient()
        key = os.environ.get(self.api_key_env) or PLACEHOLDER_KEY
        return openai.AsyncOpenAI(api_key=key, base_url=self._base_url, timeout=self.timeout,
                                  http_client=self._http, max_retries=0)  # retries are ours: per request

    async def _stream(self, client: Any, run: StreamRun, params: GenerationParams,
                      emit: Callable[[Any], None]) -> None:
        """Send ``run``'s request and emit its chunks until the stream ends or a stop string arrived.

        Runs on the request loop: it reads only ``run.prompt`` and ``run.stopped``; the
        calling thread owns the rest of ``run``. Cancelling the task closes the stream.
        """
        sent = time.perf_counter()
        stream, endpoint = await with_retries(lambda tries: self._open(client, run.prompt, params, tries),
                                              _retryable, self.max_retries)
        async with stream:
            emit(_Opened(endpoint, sent))
            await self._check_event_stream(stream)
            async for chunk in stream:
                if run.stopped:
                    return  # leaving closes the stream, which tells the server to stop
                emit(chunk)

    async def _open(self, client: Any, prompt: Prompt, params: GenerationParams, tries: int) -> tuple[Any, str]:
        import openai

        messages = as_messages(prompt)
        if messages is None and self.raw_endpoint == "completions":
            try:
                return await client.completions.create(prompt=prompt, **self._request(params, False, tries)), \
                    "completions"
            except openai.NotFoundError:
                self.raw_endpoint = "chat"  # no /completions here: send raw text as a user message
        messages = messages or [Message("user", str(prompt))]
        return await client.chat.completions.create(messages=[m.to_openai() for m in messages],
                                                    **self._request(params, True, tries)), "chat"

    def _request(self, params: GenerationParams, chat: bool, tries: int = 0) -> dict[str, Any]:
        req: dict[str, Any] = dict(model=self.model, stream=True, stream_options={"include_usage": True},
                                   max_tokens=params.max_new_tokens, temperature=float(params.temperature),
                                   extra_headers={"x-stainless-retry-count": str(tries)})
        if params.top_p < 1:
            req["top_p"] = float(params.top_p)  # 1 is every server's default: leave the request as plain as can be
        if params.seed is not None:
            req["seed"] = params.seed
        if params.stop:
            req["stop"] = list(params.stop)
        if params.extra.get("logit_bias"):
            req["logit_bias"] = {str(k): float(v) for k, v in params.extra["logit_bias"].items()}
        body = dict(params.extra.get("extra_body") or {})
        if params.top_k is not None:
            body["top_k"] = params.top_k  # vLLM, llama.cpp and Ollama read it; OpenAI refuses it
        if body:
            req["extra_body"] = body
        if self.logprobs and chat:
            req.update(logprobs=True, **({"top_logprobs": params.top_logprobs} if params.top_logprobs else {}))
        elif self.logprobs:
            req["logprobs"] = params.top_logprobs
        return req

    async def _check_event_stream(self, stream: Any) -> None:
        ctype = stream.response.headers.get("content-type", "")
        if ctype.startswith("text/event-stream"):
            return
        body = (await stream.response.aread())[:300].decode("utf-8", "replace")
        try:
            json.loads(body)
            what = f"answered {ctype or 'no content type'} instead of an event stream (stream=true)"
        except ValueError as exc:
            what = f"sent malformed JSON ({exc.msg} at char {exc.pos}): {body[:120]!r}"
        raise self._failure(what, None)

    # -- turning client failures into one readable error ---------------------------------------------

    def _error(self, exc: BaseException, run: StreamRun) -> BackendError:
        """One BackendError for a client failure, chained to it unless it shows the key."""
        tries = exc.tries if isinstance(exc, GaveUp) else 1
        exc = exc.cause if isinstance(exc, GaveUp) else exc
        what = describe(exc, run.opened, tries, self.timeout, self.api_key_env) \
            if isinstance(exc, Exception) else None
        if what is None:
            raise exc  # a bug, not the server's doing: show it as it is
        err = self._failure(what, run if run.opened else None)
        shown = f"{exc!s} {getattr(exc, 'body', '')!s}"
        err.__cause__ = None if self._key_in(shown) else exc
        err.__suppress_context__ = True
        return err

    def _failure(self, what: str, run: StreamRun | None) -> BackendError:
        where = f"server at {self.base_url} (model {self.model!r})"
        if run is not None:
            what += f" after {len(run.tokens)} streamed tokens; the text so far is in `err.partial`"
        return BackendError(self._scrub(f"{where} {what}"))

    def _key_in(self, text: str) -> bool:
        key = os.environ.get(self.api_key_env) or ""
        return len(key) >= 4 and key in text

    def _scrub(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) or ""
        text = text.replace(key, "***") if len(key) >= 4 else text
        return _strip_userinfo(text.replace(self._base_url, self.base_url))


@dataclass(frozen=True)
class _Opened:
    """A worker's first item for a row: the server answered; when the request was sent, and where."""

    endpoint: str
    sent: float


def _retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRIED_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)  # refused, reset, or timed out


def _check_settings(model: str, base_url: str, timeout: float, max_retries: int) -> None:
    if not isinstance(model, str) or not model.strip():
        raise OptionError(f"`model` must be a non-empty model name, got {model!r}")
    parts = urllib.parse.urlsplit(str(base_url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"`base_url` must be an http(s) URL such as 'http://127.0.0.1:8000/v1', "
                          f"got {safe_url(str(base_url))!r}")
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise OptionError(f"`timeout` must be a number of seconds > 0, got {timeout!r}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise OptionError(f"`max_retries` must be an integer >= 0, got {max_retries!r}")


def _check_logit_bias(bias: Any) -> None:
    if bias is None:
        return
    ok = isinstance(bias, dict) and all(str(k).isdigit() and isinstance(v, (int, float))
                                        and -100 <= v <= 100 for k, v in bias.items())
    if not ok:
        raise OptionError("`extra['logit_bias']` must map token ids to biases in [-100, 100], "
                          f"e.g. {{198: -100}}, got {bias!r:.80}")

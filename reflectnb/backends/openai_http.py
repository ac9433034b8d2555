"""A backend for OpenAI-compatible HTTP servers: vLLM, llama.cpp server, Ollama, OpenAI.

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
* Prompts are sent one after another (``can_batch = False``).
* The API key is read from the environment variable ``api_key_env`` at each call (never
  stored on the backend); ``"EMPTY"`` is sent when it is unset. Names, errors and
  traces show the URL without credentials and never the key.
* Every failure is one :class:`BackendError` naming the server, the model and what
  happened; ``err.partial`` holds the generations finished before it plus the broken
  one (``finish_reason="error"``). Ctrl-C raises :class:`GenerationInterrupted`.

Non-goals: logits processors (no code runs per token over HTTP), tools, async clients,
non-streaming replies.
"""

from __future__ import annotations

import http
import json
import os
import re
import urllib.parse
from typing import Any, Iterator, Sequence

from reflectnb.backends.base import (Backend, GenerationInterrupted, GenerationParams, Prompt,
                                     TokenCallback, as_messages)
from reflectnb.backends.openai_stream import StreamRun, entropy_from_top  # noqa: F401 (re-exported)
from reflectnb.errors import BackendError, CapabilityError, OptionError
from reflectnb.trace import Generation, Message

PLACEHOLDER_KEY = "EMPTY"
_RETRIED = {408, 409, 429}  # and every 5xx: what the openai client retries


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
    """Generations from an OpenAI-compatible server, streamed token by token.

    Parameters
    ----------
    model : str
        The model name the server knows (``"llama3.2"``, ``"Qwen/Qwen2.5-0.5B-Instruct"``).
    base_url : str
        The API root, usually ending in ``/v1`` (``"http://127.0.0.1:8000/v1"``).
    api_key_env : str
        Environment variable holding the API key (default ``OPENAI_API_KEY``).
    timeout : float
        Seconds to wait for the server (to connect, and between streamed chunks).
    max_retries : int
        Extra tries after a refused connection, a timeout, 408/409/429 or a 5xx answer.
    name : str, optional
        Name in traces; defaults to ``"openai:<model>@<base_url>"``.
    logprobs : bool
        Ask the server for log-probabilities (switch off for servers that refuse them).

    Examples
    --------
    >>> model = OpenAIBackend("llama3.2", "http://127.0.0.1:11434/v1")   # doctest: +SKIP
    >>> model.generate_one([Message("user", "2+3?")]).text                 # doctest: +SKIP
    '2 + 3 = 5.'
    """

    can_stream = True
    can_batch = False
    can_process_logits = False
    has_logprobs = True

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 60.0, max_retries: int = 2, name: str | None = None,
                 logprobs: bool = True):
        _check_settings(model, base_url, timeout, max_retries)
        self.model = model
        self.base_url = safe_url(base_url)
        self._base_url = base_url.strip().rstrip("/")
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.logprobs = logprobs
        self.name = _strip_userinfo(name) if name else f"openai:{model}@{self.base_url}"
        self.raw_endpoint = "completions"  # becomes "chat" if the server has no /completions

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
        done: list[Generation] = []
        with self._client() as client:
            for row, prompt in enumerate(prompts):
                run = StreamRun(row, prompt)
                try:
                    done.append(self._generate_row(client, run, params, on_token))
                except KeyboardInterrupt:
                    raise GenerationInterrupted(done + [self._result(run, params, "interrupted")]) from None
                except BackendError as err:
                    err.partial = done + [self._result(run, params, "error")]  # type: ignore[attr-defined]
                    raise
        return done

    # -- one prompt -----------------------------------------------------------------------------------

    def _client(self) -> Any:
        import openai  # lazy: `import reflectnb` must stay light

        key = os.environ.get(self.api_key_env) or PLACEHOLDER_KEY
        return openai.OpenAI(api_key=key, base_url=self._base_url, timeout=self.timeout,
                             max_retries=self.max_retries)

    def _generate_row(self, client: Any, run: StreamRun, params: GenerationParams,
                      on_token: TokenCallback | None) -> Generation:
        import openai

        try:
            stream = self._open(client, run, params)
        except openai.APIError as exc:
            raise self._error(exc, run)
        run.opened = True
        with stream:
            self._check_event_stream(stream)
            for chunk in self._chunks(stream, run):
                for event in run.add(chunk):
                    if on_token is not None:
                        on_token(event)
        if run.finish is None:
            raise self._failure("ended the stream without a finish_reason", run)
        return self._result(run, params, "length" if run.finish == "length" else "stop")

    def _open(self, client: Any, run: StreamRun, params: GenerationParams) -> Any:
        import openai

        messages = as_messages(run.prompt)
        if messages is None and self.raw_endpoint == "completions":
            run.endpoint = "completions"
            try:
                return client.completions.create(prompt=run.prompt, **self._request(params, chat=False))
            except openai.NotFoundError:
                self.raw_endpoint = "chat"  # no /completions here: send raw text as a user message
        run.endpoint = "chat"
        messages = messages or [Message("user", str(run.prompt))]
        return client.chat.completions.create(messages=[m.to_openai() for m in messages],
                                              **self._request(params, chat=True))

    def _request(self, params: GenerationParams, chat: bool) -> dict[str, Any]:
        req: dict[str, Any] = dict(model=self.model, stream=True, stream_options={"include_usage": True},
                                   max_tokens=params.max_new_tokens, temperature=float(params.temperature),
                                   top_p=float(params.top_p))
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

    def _result(self, run: StreamRun, params: GenerationParams, reason: str) -> Generation:
        return run.generation(self.name, reason, {**params.to_dict(), "endpoint": run.endpoint})

    # -- turning client failures into one readable error ---------------------------------------------

    def _chunks(self, stream: Any, run: StreamRun) -> Iterator[Any]:
        import openai

        chunks = iter(stream)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except (openai.APIError, ValueError) as exc:  # ValueError: data that is not JSON
                raise self._error(exc, run)
            yield chunk

    def _check_event_stream(self, stream: Any) -> None:
        ctype = stream.response.headers.get("content-type", "")
        if ctype.startswith("text/event-stream"):
            return
        body = stream.response.read()[:300].decode("utf-8", "replace")
        try:
            json.loads(body)
            what = f"answered {ctype or 'no content type'} instead of an event stream (stream=true)"
        except ValueError as exc:
            what = f"sent malformed JSON ({exc.msg} at char {exc.pos}): {body[:120]!r}"
        raise self._failure(what, None)

    def _error(self, exc: Exception, run: StreamRun) -> BackendError:
        """One BackendError for a client failure, chained to it unless it shows the key."""
        midway = run.opened
        err = self._failure(self._describe(exc, midway), run if midway else None)
        shown = f"{exc!s} {getattr(exc, 'body', '')!s}"
        err.__cause__ = None if self._key_in(shown) else exc
        err.__suppress_context__ = True
        return err

    def _describe(self, exc: Exception, midway: bool) -> str:
        import openai

        tries = 1 if midway else self.max_retries + 1
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            after = _after(tries if code in _RETRIED or code >= 500 else 1)
            return f"answered {code} {_phrase(code)}{after}: {_detail(exc)}{_hint(code, self.api_key_env)}"
        if isinstance(exc, openai.APITimeoutError):
            return (f"did not answer within {self.timeout:g} s{_after(tries)}; raise `timeout` or check "
                    "that the server is not overloaded")
        if isinstance(exc, openai.APIConnectionError):
            reason = str(exc.__cause__ or exc) or type(exc.__cause__).__name__
            if midway:
                return f"broke the connection ({reason})"
            return f"could not be reached ({reason}){_after(tries)}; is it running, and is the URL right?"
        if isinstance(exc, ValueError):
            return f"sent malformed data in the stream ({exc})"
        return f"reported an error in the stream: {getattr(exc, 'message', exc)}"

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


def _after(tries: int) -> str:
    return f" after {tries} tries" if tries > 1 else ""


def _phrase(code: int) -> str:
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "(unknown status)"


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = " ".join(str(message or body or exc.message).split())
    return text[:200] + ("…" if len(text) > 200 else "")


def _hint(code: int, env: str) -> str:
    if code in (401, 403):
        return f"; check the API key in ${env}"
    if code == 404:
        return "; check the model name and that base_url ends with /v1"
    if code == 429:
        return "; the server is rate-limiting: wait, or send fewer requests"
    return "; see the server's log" if code >= 500 else ""


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

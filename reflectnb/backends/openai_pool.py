"""Up to ``concurrency`` HTTP requests in flight, reported to the calling thread through one queue.

Contract
--------
* :class:`RequestPool` runs the coroutine ``work(row, emit)`` for every row, at most
  ``concurrency`` at once, rows started in input order, on one event loop in a
  daemon thread (:func:`request_loop`). The requests never call user code: they only
  ``emit`` items, which the calling thread reads from :meth:`RequestPool.events` as
  ``(kind, row, payload)`` — ``"item"`` for each emitted value, then exactly one
  ``"done"`` (payload ``None``) or ``"error"`` (payload the exception) per row. So
  ``on_token``, the live view and the trace recorder, none of them thread-safe,
  only ever run on the caller's thread.
* :meth:`RequestPool.cancel` (Ctrl-C on the calling thread) cancels every task:
  requests not sent are not sent, a wait before a retry ends, a request waiting for
  its answer is dropped, and an open stream is closed, which tells the server to stop.
* :func:`with_retries` retries one request (not a stream already under way) after
  a refused connection, a timeout, 408/409/429 or a 5xx, waiting what the server's
  ``Retry-After`` / ``retry-after-ms`` asks (at most ``MAX_RETRY_AFTER`` s), else an
  exponential backoff with jitter, per request. It gives up after ``max_retries``
  extra tries with :class:`GaveUp` carrying the last failure and the number of tries.
* How many in flight: :func:`check_concurrency` (a positive int or one
  ``OptionError``), :func:`split_concurrency` / :func:`with_concurrency` (the
  ``?concurrency=N`` of a model string), :func:`set_default_concurrency` (what
  ``%config ReflectMagics.concurrency`` sets; 16 until then).

Why one private event loop rather than a thread per request: 16 threads sending at
once hand the GIL to each other, and on a busy machine each hand-over waits for the
scheduler, so their requests reached a server over ~0.1-0.4 s where ``AsyncOpenAI``'s
reached it within ~0.06-0.09 s; a continuous-batching server then starts the late ones a
step behind. The loop is not the notebook's (that one runs the cell), and the calling
thread only waits on a queue, so Ctrl-C reaches it at once.

Non-goals: rate limiting before a server asks for it, asyncio.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import queue
import random
import threading
import time
import urllib.parse
from typing import Any, Awaitable, Callable, Iterator

from reflectnb.errors import OptionError

RETRIED_STATUS = frozenset({408, 409, 429})  # and every 5xx
INITIAL_BACKOFF = 0.5  # seconds before the first retry when the server names no delay
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is capped: a notebook should not hang for minutes

DEFAULT_CONCURRENCY = 16
_DEFAULTS = {"concurrency": DEFAULT_CONCURRENCY}  # %config ReflectMagics.concurrency changes it

Emit = Callable[[Any], None]
Work = Callable[[int, Emit], Awaitable[None]]  # (row, emit) -> coroutine


class GaveUp(Exception):
    """A request failed ``tries`` times; ``cause`` is the last failure."""

    def __init__(self, cause: BaseException, tries: int):
        super().__init__(str(cause))
        self.cause, self.tries = cause, tries


class RequestPool:
    """``rows`` requests as tasks on the shared request loop, at most ``concurrency`` at a time."""

    def __init__(self, rows: int, concurrency: int, work: Work):
        self.rows = rows
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._work = work
        self._future = asyncio.run_coroutine_threadsafe(self._all(concurrency), request_loop())

    def events(self) -> Iterator[tuple[str, int, Any]]:
        """``(kind, row, payload)`` in arrival order until every row is done or failed."""
        finished = 0
        while finished < self.rows:
            try:
                kind, row, payload = self._events.get(timeout=0.1)  # a timed wait keeps Ctrl-C prompt
            except queue.Empty:
                continue
            finished += kind != "item"
            yield kind, row, payload

    def cancel(self) -> None:
        """Cancel every request still running or waiting (their streams close at once)."""
        self._future.cancel()

    async def _all(self, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)  # FIFO: rows start in input order
        await asyncio.gather(*(self._run(row, gate) for row in range(self.rows)))

    async def _run(self, row: int, gate: asyncio.Semaphore) -> None:
        def emit(item: Any) -> None:
            self._events.put(("item", row, item))

        async with gate:
            try:
                await self._work(row, emit)
            except Exception as exc:  # noqa: BLE001 - handed to the calling thread (not CancelledError)
                self._events.put(("error", row, exc))
            else:
                self._events.put(("done", row, None))


_LOOP: dict[str, Any] = {}
_LOOP_LOCK = threading.Lock()


def request_loop() -> asyncio.AbstractEventLoop:
    """The event loop, in its own daemon thread, that every server backend's requests run on.

    One loop for the process: connection pools are bound to a loop, so keeping one lets
    them (and their kept-alive connections) serve every call.
    """
    with _LOOP_LOCK:
        if _LOOP.get("pid") != os.getpid():  # first use, or a forked child (the thread did not come along)
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="reflectnb-http", daemon=True).start()
            _LOOP.update(loop=loop, pid=os.getpid())
        return _LOOP["loop"]


async def with_retries(send: Callable[[int], Awaitable[Any]], retryable: Callable[[BaseException], bool],
                       max_retries: int) -> Any:
    """``await send(tries_so_far)``, retried on ``retryable`` failures with per-request backoff.

    Raises :class:`GaveUp` after ``max_retries + 1`` failed tries (or one that is not retryable).
    Cancelling the task cancels the wait, too.
    """
    for attempt in range(max_retries + 1):
        try:
            return await send(attempt)
        except Exception as exc:  # noqa: BLE001 - sorted just below
            if attempt == max_retries or not retryable(exc):
                raise GaveUp(exc, attempt + 1) from exc
            await asyncio.sleep(retry_delay(exc, attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def retry_delay(exc: BaseException, attempt: int) -> float:
    """Seconds to wait before retry ``attempt + 1``: the server's ``Retry-After``, else a backoff."""
    response = getattr(exc, "response", None)
    asked = retry_after(getattr(response, "headers", None) or {})
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER)
    return min(INITIAL_BACKOFF * 2 ** attempt, MAX_BACKOFF) * (1 - 0.25 * random.random())


def retry_after(headers: Any) -> float | None:
    """The delay a server asks for, in seconds: ``retry-after-ms``, ``retry-after`` seconds or date.

    >>> retry_after({"retry-after": "2"}), retry_after({"retry-after-ms": "150"}), retry_after({})
    (2.0, 0.15, None)
    """
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return value / scale
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after"))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- how many: checked, read from the model string, defaulted ------------------------------------------


def check_concurrency(value: Any) -> int:
    """``value`` as a positive int, else one :class:`OptionError`.

    >>> check_concurrency("8")
    8
    """
    number = value if isinstance(value, int) and not isinstance(value, bool) else \
        int(value) if isinstance(value, str) and value.strip().isdigit() else None
    if number is None or number <= 0:
        raise OptionError(f"`concurrency` must be a positive integer (requests in flight at once), got {value!r}")
    return number


def split_concurrency(url: str) -> tuple[str, int | None]:
    """``url`` without its ``concurrency=N`` query item, and ``N`` (or ``None``).

    >>> split_concurrency("http://127.0.0.1:8000/v1?concurrency=8")
    ('http://127.0.0.1:8000/v1', 8)
    """
    parts = urllib.parse.urlsplit(url.strip())
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    found = [v for k, v in query if k == "concurrency"]
    if not found:
        return url, None
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k != "concurrency"])
    return urllib.parse.urlunsplit(parts._replace(query=rest)), check_concurrency(found[-1])


def with_concurrency(name: str, concurrency: Any) -> str:
    """The model string ``name`` with ``?concurrency=N`` set (what ``load_model(concurrency=N)`` loads).

    >>> with_concurrency("openai:m@http://h:8000/v1", 4)
    'openai:m@http://h:8000/v1?concurrency=4'
    """
    head, _, url = name.partition("@")
    url, _ = split_concurrency(url)
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{head}@{url}{sep}concurrency={check_concurrency(concurrency)}"


def set_default_concurrency(concurrency: Any) -> None:
    """The concurrency of every server backend that was not given its own (``%config`` sets it)."""
    _DEFAULTS["concurrency"] = check_concurrency(concurrency)


def default_concurrency() -> int:
    """Requests in flight for a server backend without its own ``concurrency`` (16 unless changed)."""
    return _DEFAULTS["concurrency"]

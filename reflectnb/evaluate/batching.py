"""Run one per-item function over several items at once, merging their generate calls into batches.

Contract
--------
:func:`run_batched` runs ``fn(backend, i)`` for ``i = 0..n-1``, each in its own
worker thread, with ``backend`` a :class:`GatheringBackend`. Each worker's
``generate`` call waits until *every* still-running worker is waiting too; then
the **calling (main) thread** sends all waiting prompts that share the same
``GenerationParams`` to the real backend as **one** ``generate`` call and hands
each worker its rows. So eight items of baseline become one 8-row call, and
eight Self-Refine loops advance in lock step (drafts together, feedback
together …) without any change to the loops themselves.

The real backend is only ever called from the main thread, so Ctrl-C reaches
it as usual: every waiting worker then gets a ``KeyboardInterrupt`` (its loop
ends as ``interrupted``), and :func:`run_batched` re-raises after the workers
have ended, with the per-worker results (values of the workers that finished
before, exceptions of the others) as the interrupt's ``partial``. An exception from the backend goes to the workers whose rows were
in that call. Results come back in order: a value, or the exception the
worker ended with.

Non-goals: batching across different params; more parallelism than one backend.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from reflectnb.backends.base import Backend, GenerationParams, Prompt, TokenCallback
from reflectnb.trace import Generation, TokenEvent


@dataclass(eq=False)
class _Request:
    worker: int
    prompts: list[Prompt]
    params: GenerationParams
    on_token: TokenCallback | None
    result: list[Generation] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass(eq=False)
class _Hub:
    backend: Backend
    active: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    pending: list[_Request] = field(default_factory=list)
    interrupted: bool = False
    calls: int = 0

    def submit(self, request: _Request) -> list[Generation]:
        with self.cond:
            if self.interrupted:
                raise KeyboardInterrupt("evaluation interrupted")
            self.pending.append(request)
            self.cond.notify_all()
            while not request.done:
                self.cond.wait()
        if request.error is not None:
            raise request.error
        return request.result or []

    def leave(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def serve(self) -> None:
        """Main-thread loop: wait until all live workers wait, run their calls, repeat.

        Ctrl-C here (while waiting or generating) interrupts every waiting worker.
        """
        try:
            while True:
                with self.cond:
                    while self.active > 0 and len(self.pending) < self.active:
                        self.cond.wait()
                    if self.active == 0:
                        return
                    batch, self.pending = sorted(self.pending, key=lambda r: r.worker), []
                self._run(batch)
        except KeyboardInterrupt:
            with self.cond:
                batch, self.pending = self.pending, []
            self._fail(batch, KeyboardInterrupt("evaluation interrupted"), interrupted=True)
            raise

    def _run(self, batch: list[_Request]) -> None:
        try:
            for group in _groups(batch):
                self._run_group(group)
        except KeyboardInterrupt:
            self._fail(batch, KeyboardInterrupt("evaluation interrupted"), interrupted=True)
            raise
        finally:
            self._fail(batch, None)

    def _run_group(self, group: list[_Request]) -> None:
        prompts = [p for request in group for p in request.prompts]
        starts = _offsets(group)
        try:
            self.calls += 1
            gens = self.backend.generate(prompts, group[0].params, on_token=_router(group, starts))
        except Exception as exc:  # goes to the workers whose rows these were
            self._fail(group, exc)
            return
        for request, start in zip(group, starts):
            request.result = gens[start:start + len(request.prompts)]

    def _fail(self, requests: list[_Request], error: BaseException | None, interrupted: bool = False) -> None:
        with self.cond:
            self.interrupted = self.interrupted or interrupted
            for request in requests:
                if not request.done:
                    request.error = request.error or (error if request.result is None else None)
                    request.done = request.result is not None or request.error is not None
            self.cond.notify_all()


def _groups(batch: list[_Request]) -> list[list[_Request]]:
    groups: list[list[_Request]] = []
    for request in batch:
        home = next((g for g in groups if g[0].params == request.params), None)
        home.append(request) if home is not None else groups.append([request])
    return groups


def _offsets(group: list[_Request]) -> list[int]:
    starts, at = [], 0
    for request in group:
        starts.append(at)
        at += len(request.prompts)
    return starts


def _router(group: list[_Request], starts: list[int]) -> TokenCallback | None:
    if all(r.on_token is None for r in group):
        return None

    def route(event: TokenEvent) -> None:
        index = max(i for i, start in enumerate(starts) if start <= event.row)
        callback = group[index].on_token
        if callback is not None:
            callback(_shifted(event, starts[index]))
    return route


def _shifted(event: TokenEvent, start: int) -> TokenEvent:
    from dataclasses import replace

    return replace(event, row=event.row - start) if start else event


class GatheringBackend(Backend):
    """What a worker sees: a backend whose ``generate`` joins the next merged batch."""

    def __init__(self, hub: _Hub, worker: int):
        inner = hub.backend
        self._hub, self._worker = hub, worker
        self.inner = inner
        self.name = inner.name
        self.can_stream, self.can_batch = inner.can_stream, True
        self.can_process_logits, self.has_logprobs = inner.can_process_logits, inner.has_logprobs

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None,
                 on_token: TokenCallback | None = None) -> list[Generation]:
        self.inner.check_params(params or GenerationParams())
        return self._hub.submit(_Request(self._worker, list(prompts), params or GenerationParams(), on_token))

    def __getattr__(self, name: str) -> Any:  # e.g. ``tokenizer`` for schedules
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def run_batched(backend: Backend, fn: Callable[[Backend, int], Any], n: int) -> tuple[list[Any], int]:
    """``([fn(gathering_backend, i) or its exception for i in range(n)], backend calls made)``.

    Examples
    --------
    >>> from reflectnb.backends.scripted import ScriptedBackend
    >>> model = ScriptedBackend(lambda prompt, i: prompt.upper())
    >>> run_batched(model, lambda b, i: b.generate_one(f"item {i}").text, 3)
    (['ITEM 0', 'ITEM 1', 'ITEM 2'], 1)
    """
    hub = _Hub(backend, n)
    results: list[Any] = [None] * n

    def work(i: int) -> None:
        try:
            results[i] = fn(GatheringBackend(hub, i), i)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller per item
            results[i] = exc
        finally:
            hub.leave()

    threads = [threading.Thread(target=work, args=(i,), name=f"reflectnb-eval-{i}", daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    try:
        hub.serve()
    except KeyboardInterrupt as interrupt:
        interrupt.partial = results  # type: ignore[attr-defined]  # complete once joined below
        raise
    finally:
        for thread in threads:
            thread.join()
    return results, hub.calls

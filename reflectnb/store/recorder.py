"""RunRecorder: the trace store's implementation of the ``Recorder`` protocol.

Contract (what the lead and the loops rely on)
----------------------------------------------
* ``with store.run(kind, model, params) as run:`` inserts the run as
  ``running`` (queued: it reaches the file with the first batch, within
  ~0.2 s, so entering costs no disk write); on leaving, buffered rows are flushed (always, in ``finally``)
  and the status becomes ``completed``, ``interrupted`` (KeyboardInterrupt,
  re-raised) or ``failed`` (other exceptions, with the redacted error text,
  re-raised).
* ``on_token`` only appends to a per-row buffer. ``on_step`` returns the step
  index (0, 1, 2 … within the run) and queues the step, its generation and
  all its tokens for the background writer; streamed tokens of that row are
  dropped then (they are duplicates). Streamed tokens never claimed by a step
  are written as a partial generation (``finish_reason='interrupted'``,
  ``step_index`` NULL) when a run does not complete, so nothing produced is lost.
* ``on_node`` appends a node state to ``node_events`` (the ``nodes`` view keeps
  the latest per node); ``on_score`` appends a score.
* No method raises into the loop for a write problem. Rows that could not be
  written are retried at run end, then saved as Parquet files and reported by
  a :class:`TraceStoreError` (or a warning, if the run already raised);
  they also stay in memory as ``run.unwritten``.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from reflectnb.errors import TraceStoreError
from reflectnb.store import rows
from reflectnb.store.redact import redact, redact_text
from reflectnb.store.writer import Batch, write_batches
from reflectnb.trace import Generation, Node, Score, Step, TokenEvent

PENDING_LIMIT = 256


class RunRecorder:
    """Records one run; create it with :meth:`TraceStore.run`.

    Examples
    --------
    >>> store = open_store(":memory:")                       # doctest: +SKIP
    >>> with store.run("generate", "smollm2-135m", {}) as run:  # doctest: +SKIP
    ...     run.on_step(Step(kind="draft", text="Hi"))
    0
    """

    def __init__(self, store: Any, kind: str, model: str, params: dict[str, Any], name: str | None = None):
        self.store, self.kind, self.model, self.name = store, kind, model, name
        self.params = redact(dict(params or {}))
        self.run_id = str(uuid.uuid4())
        self.unwritten: list[Batch] = []
        self._streamed: dict[int, list[TokenEvent]] = {}
        self._pending = Batch(self.run_id)
        self._pending_rows: dict[str, list[dict[str, Any]]] = {"node_events": [], "scores": []}
        self._counts = {"steps": 0, "gens": 0, "scores": 0, "nodes": 0, "prompt": 0, "completion": 0}
        self._result: dict[str, Any] = {}
        self._started = time.monotonic()
        self._problems: list[str] = []
        self._final: tuple[str, list[Any]] = ("SELECT 1", [])

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> "RunRecorder":
        row = {"run_id": self.run_id, "name": self.name, "kind": self.kind, "model": self.model,
               "params": rows.to_json(self.params), "status": "running", "started_at": rows.now(),
               "pid": os.getpid(), "host": socket.gethostname(), "reflectnb_version": _version()}
        self._pending.add("runs", _rows_builder("runs", [row]))  # written with the first batch
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status, error = "completed", None
        elif issubclass(exc_type, KeyboardInterrupt):
            status, error = "interrupted", None
        else:
            status, error = "failed", redact_text(f"{exc_type.__name__}: {exc}")[:4000]
        self._finish(status, error, raising=exc_type is None)
        return False

    def set_result(self, final_answer: str | None, stop_reason: str | None = None, **extra: Any) -> None:
        """Record the run's outcome (written when the run ends); ``task=`` fills ``runs.task``."""
        self._result = {"final_answer": final_answer, "stop_reason": stop_reason, **extra}

    # -- Recorder protocol ------------------------------------------------------------
    def on_token(self, event: TokenEvent) -> None:
        buffer = self._streamed.get(event.row)
        if buffer is None or (event.position == 0 and buffer):
            self._streamed[event.row] = [event]  # a new generation on this row
        else:
            buffer.append(event)

    def on_step(self, step: Step) -> int:
        index = self._counts["steps"]
        self._counts["steps"] += 1
        try:
            self._pending.add("steps", _rows_builder("steps", [self._step_row(step, index)]))
            if step.generation is not None:
                self._add_generation(step.generation, index)
            self._submit()
        except Exception as exc:  # noqa: BLE001 - tracing must not break the loop
            self._problems.append(f"step {index}: {exc}")
        return index

    def on_node(self, node: Node) -> None:
        self._counts["nodes"] += 1
        self._queue_row("node_events", {
            "run_id": self.run_id, "node_id": node.node_id, "parent": node.parent, "depth": node.depth,
            "text": node.text, "value": node.value, "visits": node.visits, "status": node.status,
            "iteration": node.iteration, "prompt": node.prompt, "attributes": _json(node.attributes),
            "seq": self._counts["nodes"], "recorded_at": rows.now()})

    def on_score(self, score: Score) -> None:
        self._counts["scores"] += 1
        self._queue_row("scores", {
            "run_id": self.run_id, "score_index": self._counts["scores"] - 1, "name": score.name,
            "value": score.value, "label": score.label, "explanation": score.explanation,
            "target_step": score.target_step, "target_node": score.target_node, "created_at": rows.now()})

    # -- internals --------------------------------------------------------------------
    def _step_row(self, step: Step, index: int) -> dict[str, Any]:
        return {"run_id": self.run_id, "step_index": index, "kind": step.kind, "role": step.role,
                "agent": step.agent, "round": step.round, "parent": step.parent, "text": step.text,
                "attributes": _json(step.attributes), "created_at": rows.now()}

    def _add_generation(self, gen: Generation, step_index: int | None) -> None:
        tokens = list(gen.tokens)
        for row in {t.row for t in tokens}:
            self._streamed.pop(row, None)
        if not tokens and step_index is not None and len(self._streamed) == 1:
            tokens = self._streamed.popitem()[1]  # the backend streamed but did not attach tokens
        g = self._counts["gens"]
        self._counts["gens"] += 1
        self._counts["prompt"] += gen.prompt_tokens or 0
        self._counts["completion"] += gen.completion_tokens or len(tokens)
        prompt = gen.prompt if isinstance(gen.prompt, str) else [_message(m) for m in gen.prompt]
        row = {"run_id": self.run_id, "gen_index": g, "step_index": step_index,
               "row": tokens[0].row if tokens else None, "model": gen.model, "prompt": rows.to_json(prompt),
               "text": gen.text, "prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
               "cached_tokens": gen.cached_tokens,
               "finish_reason": gen.finish_reason, "seconds": gen.seconds, "params": _json(gen.params),
               "created_at": rows.now()}
        self._pending.add("generations", _rows_builder("generations", [row]))
        if tokens:
            run_id = self.run_id
            self._pending.add("tokens", lambda: rows.tokens_table(run_id, [(g, step_index, tokens)]))

    def _queue_row(self, table: str, row: dict[str, Any]) -> None:
        pending = self._pending_rows[table]
        pending.append(row)
        if len(pending) >= PENDING_LIMIT:
            self._submit()

    def _submit(self) -> None:
        for table, pending in self._pending_rows.items():
            if pending:
                self._pending.add(table, _rows_builder(table, list(pending)))
                pending.clear()
        if self._pending.parts or self._pending.statements:
            self.store.writer.submit(self._pending)
            self._pending = Batch(self.run_id)

    def _finish(self, status: str, error: str | None, raising: bool) -> None:
        try:
            if status != "completed":
                self._keep_streamed()
            self._final = self._update_statement(status, error)
            self._pending.statements.append(self._final)
        finally:
            self._submit()  # rows and the status update go in one transaction
            self.store.writer.flush(timeout=60.0)
            self._retry_failed()
            self._report(raising)

    def _keep_streamed(self) -> None:
        for row, tokens in sorted(self._streamed.items()):
            text = "".join(t.text for t in tokens)
            self._add_generation(Generation(text=text, model=self.model, prompt="", tokens=tokens,
                                            completion_tokens=len(tokens), finish_reason="interrupted"), None)
        self._streamed.clear()

    def _retry_failed(self) -> None:
        failed = self.store.writer.take_failed(self.run_id)
        if not failed:
            return
        try:  # the status update again after the rows (it may have run before the run row existed)
            write_batches(self.store.db, failed + [Batch(self.run_id, statements=[self._final])])
        except BaseException as exc:  # noqa: BLE001
            self.unwritten.extend(failed)
            self._problems.append(failed[0].error or str(exc))

    def _update_statement(self, status: str, error: str | None) -> tuple[str, list[Any]]:
        result = redact(dict(self._result))
        task = result.pop("task", None) or self.params.get("task")
        values = [status, error, time.monotonic() - self._started, self._counts["prompt"],
                  self._counts["completion"], self._counts["steps"], task, result.pop("final_answer", None),
                  result.pop("stop_reason", None), rows.to_json(result), self.run_id]
        return ("""UPDATE runs SET status = ?, error = ?, ended_at = now(), seconds = ?, prompt_tokens = ?,
            completion_tokens = ?, steps = ?, task = ?, final_answer = ?, stop_reason = ?, result = ?
            WHERE run_id = ?""", values)

    def _report(self, raising: bool) -> None:
        if not self._problems:
            return
        where = self._dump()
        message = (f"reflectnb could not write all of run {self.run_id} to {self.store.path}: "
                   f"{redact_text(self._problems[0])[:300]}. {where}")
        if raising:
            raise TraceStoreError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _dump(self) -> str:
        if not self.unwritten:
            return "No rows were lost."
        for base in (Path(self.store.fallback_dir()), Path(tempfile.gettempdir()) / "reflectnb-fallback"):
            try:
                folder = base / self.run_id
                for i, batch in enumerate(self.unwritten):
                    batch.dump(folder, i)
                return (f"The unwritten rows were saved as Parquet files in {folder} (also kept in "
                        "memory as run.unwritten); load them with duckdb.read_parquet(...).")
            except Exception:  # noqa: BLE001 - try the next place
                continue
        return "The unwritten rows are kept in memory as run.unwritten (no folder was writable)."


def _rows_builder(table: str, data: list[dict[str, Any]]):
    return lambda: rows.table(table, data)


def _json(value: Any) -> str | None:
    return None if value is None else rows.to_json(redact(value))


def _message(m: Any) -> dict[str, Any]:
    return m.to_dict() if hasattr(m, "to_dict") else dict(m)


def _version() -> str:
    from reflectnb.version import __version__

    return __version__

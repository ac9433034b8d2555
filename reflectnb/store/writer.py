"""The background writer: batches go to DuckDB off the generation thread.

Contract
--------
* :meth:`Writer.submit` only appends to a queue (microseconds); a daemon
  thread gathers everything queued for up to ``interval`` seconds and writes
  it in **one** short transaction (open file → insert Arrow tables → commit →
  close), so generation is never slowed by disk or by another process holding
  the file.
* A batch that cannot be written is retried on its own (one bad batch does not
  sink the others), then kept in memory under its run id: nothing is raised
  into the generation loop. :meth:`Writer.take_failed` hands the kept batches
  to the run's recorder, which retries once more at run end and otherwise dumps
  them to Parquet and raises a :class:`TraceStoreError` saying where.
* :meth:`Writer.flush` waits until everything submitted so far is written (or
  kept as failed); it is called in each run's ``finally`` and at interpreter
  exit (bounded by a timeout).

Non-goals: ordering between runs, retry forever.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from reflectnb.store import rows
from reflectnb.store.connection import disk_full

Builder = Callable[[], pa.Table]


@dataclass
class Batch:
    """Rows of one run for several tables; builders run lazily on the writer thread."""

    run_id: str
    parts: list[tuple[str, Builder]] = field(default_factory=list)
    statements: list[tuple[str, list[Any]]] = field(default_factory=list)  # run after the inserts
    error: str | None = None
    _built: list[tuple[str, pa.Table]] | None = None

    def add(self, table: str, builder: Builder) -> None:
        self.parts.append((table, builder))

    def tables(self) -> list[tuple[str, pa.Table]]:
        if self._built is None:
            self._built = [(name, build()) for name, build in self.parts]
        return self._built

    def dump(self, folder: Path, number: int) -> list[Path]:
        """Write this batch's tables as Parquet files under ``folder``; returns the paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.statements:
            path = folder / f"statements-{number:04d}.json"
            path.write_text(json.dumps([[q, [str(v) for v in p]] for q, p in self.statements]))
            paths.append(path)
        for i, (name, data) in enumerate(self.tables()):
            path = folder / f"{name}-{number:04d}-{i}.parquet"
            pq.write_table(data, path)
            paths.append(path)
        return paths


class Writer:
    """A queue plus one daemon thread writing to ``db`` (a :class:`Database`)."""

    def __init__(self, db: Any, interval: float = 0.2):
        self.db = db
        self.interval = interval
        self._queue: deque[Batch] = deque()
        self._failed: dict[str, list[Batch]] = {}
        self._cond = threading.Condition()
        self._busy = False
        self._urgent = False
        self._thread: threading.Thread | None = None
        atexit.register(self.flush, 5.0)

    def submit(self, batch: Batch) -> None:
        """Queue ``batch`` for writing (never blocks on the database)."""
        with self._cond:
            self._queue.append(batch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="reflectnb-trace-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued now; False if ``timeout`` ran out first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def take_failed(self, run_id: str) -> list[Batch]:
        """The batches of ``run_id`` that could not be written (removed from the writer)."""
        with self._cond:
            return self._failed.pop(run_id, [])

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue)
                self._cond.wait_for(lambda: self._urgent, timeout=self.interval)  # gather more rows
                batches = list(self._queue)
                self._queue.clear()
                self._busy, self._urgent = True, False
            try:
                self._write(batches)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batches: list[Batch]) -> None:
        try:
            write_batches(self.db, batches)
        except BaseException:  # noqa: BLE001 - isolate the bad batch, keep the rest
            for batch in batches:
                try:
                    write_batches(self.db, [batch])
                except BaseException as exc:  # noqa: BLE001 - never raise into the loop
                    batch.error = problem(exc)
                    with self._cond:
                        self._failed.setdefault(batch.run_id, []).append(batch)


def problem(exc: BaseException) -> str:
    """One line for a failed write; a full disk or file-size limit is named as such."""
    text = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    if disk_full(exc):
        return (f"the disk is full or a file-size limit was hit ({text[:200]}); free some space or set "
                "REFLECTNB_TRACES to a file on another disk. Rows written before are intact")
    return text


def write_batches(db: Any, batches: list[Batch]) -> None:
    """Write ``batches`` in one transaction (all or nothing), one INSERT per table.

    The Arrow tables are built before the file lock is taken.
    """
    grouped: dict[str, list[pa.Table]] = {}
    for batch in batches:
        for name, data in batch.tables():
            grouped.setdefault(name, []).append(data)
    with db.connect(kept=True) as con:  # attached to the kept instance: no DuckDB start per write
        con.execute("BEGIN")
        try:
            for name, tables in grouped.items():  # one INSERT per table, however many batches
                rows.insert(con, name, tables[0] if len(tables) == 1 else pa.concat_tables(tables))
            for batch in batches:
                for query, params in batch.statements:
                    con.execute(query, params)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended the transaction;
                con.execute("ROLLBACK")              # keep the error that says why (disk full …)
            raise

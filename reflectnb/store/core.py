"""TraceStore: the one object the rest of reflectnb talks to.

Contract
--------
* :func:`open_store` returns one :class:`TraceStore` per resolved path per
  process (``None`` → :func:`reflectnb.config.trace_path`). Opening migrates
  the schema and marks runs left ``running`` by dead processes on this host as
  ``interrupted``.
* :meth:`TraceStore.run` starts a :class:`RunRecorder` (see that module).
* :meth:`TraceStore.sql` runs read-only SQL unless ``write=True``;
  :meth:`TraceStore.run_df` is the steps of one run. The exports are thin
  methods over :mod:`reflectnb.store.exports` and :mod:`reflectnb.store.otlp`.

Non-goals: a server; sharing one open file handle between processes (see
:mod:`reflectnb.store.connection` for how processes take turns).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from reflectnb.errors import TraceStoreError
from reflectnb.store.connection import MEMORY, Database
from reflectnb.store.queries import run_sql
from reflectnb.store.recorder import RunRecorder
from reflectnb.store.writer import Writer

_STORES: dict[str, "TraceStore"] = {}
_STORES_LOCK = threading.Lock()


def open_store(path: str | os.PathLike | None = None, create: bool = True) -> "TraceStore":
    """The trace store at ``path`` (default ``config.trace_path()``), cached per process.

    ``create=False`` (a read) raises :class:`TraceStoreError` instead of creating a
    missing file or folder.

    Examples
    --------
    >>> from reflectnb.store import SCHEMA_VERSION
    >>> store = open_store(":memory:")
    >>> int(store.sql("SELECT max(version) AS v FROM schema_migrations")["v"][0]) == SCHEMA_VERSION
    True
    """
    if path is None:
        from reflectnb.config import trace_path

        path = trace_path()
    key = str(path) if str(path) == MEMORY else str(Path(path).expanduser().resolve())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            if not create and key != MEMORY and not os.path.exists(key):
                raise TraceStoreError(f"no trace store at {key} yet: nothing was recorded there. Run a "
                                      "loop first, or check the path (--path / REFLECTNB_TRACES).")
            store = _STORES[key] = TraceStore(key)
        return store


class TraceStore:
    """A trace database: recording runs, querying them, exporting them."""

    def __init__(self, path: str):
        self.db = Database(path)
        self.path = self.db.path
        self.writer = Writer(self.db)
        self._sweep_dead_runs()

    def __repr__(self) -> str:
        return f"TraceStore({self.path!r})"

    def run(self, kind: str, model: str, params: Mapping[str, Any] | None = None, *,
            name: str | None = None) -> RunRecorder:
        """A recorder for one run; use it as a context manager.

        Examples
        --------
        >>> with open_store(":memory:").run("generate", "smollm2-135m", {"temperature": 0}) as run:
        ...     run.set_result("Paris", "stop")
        """
        return RunRecorder(self, kind, model, dict(params or {}), name=name)

    def sql(self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None,
            write: bool = False) -> pd.DataFrame:
        """Run SQL (read-only unless ``write=True``); values in ``params`` bind to ``$name`` / ``?``."""
        self.writer.flush(timeout=10.0)  # so a query sees what was recorded before it
        return run_sql(self.db, query, params, write=write)

    def run_df(self, run_id: str) -> pd.DataFrame:
        """The steps of one run, in order, with their generation's token count and finish reason."""
        return self.sql("""SELECT s.step_index, s.kind, s.role, s.agent, s.round, s.parent, s.text,
            g.completion_tokens, g.finish_reason, s.attributes
            FROM steps s LEFT JOIN generations g USING (run_id, step_index)
            WHERE s.run_id = $run_id ORDER BY s.step_index""", {"run_id": run_id})

    def fallback_dir(self) -> str:
        """Where rows that could not be written are saved as Parquet."""
        base = Path.cwd() / ".reflectnb" if self.db.memory else Path(self.path).parent
        return str(base / "unwritten")

    # -- exports ---------------------------------------------------------------------
    def export_sft(self, path: str | os.PathLike, run_ids: Sequence[str] | None = None,
                   fmt: str = "trl") -> int:
        """Write SFT JSONL (``fmt='trl'`` or ``'openai'``); returns the number of examples."""
        from reflectnb.store import exports

        return exports.export_sft(self, path, run_ids, fmt)

    def export_dpo(self, path: str | os.PathLike, run_ids: Sequence[str] | None = None,
                   fmt: str = "trl", score: str | None = None) -> int:
        """Write preference pairs ranked by scores (``fmt='trl'`` or ``'openai'``); returns the count."""
        from reflectnb.store import exports

        return exports.export_dpo(self, path, run_ids, fmt, score)

    def export_parquet(self, folder: str | os.PathLike, run_ids: Sequence[str] | None = None) -> list[str]:
        """Write every table as ``<folder>/<table>.parquet``; returns the paths."""
        from reflectnb.store import exports

        return exports.export_parquet(self, folder, run_ids)

    def export_otlp(self, path: str | os.PathLike, run_ids: Sequence[str] | None = None) -> int:
        """Write runs as OTLP/JSON spans (OTel GenAI + OpenInference attributes); returns span count."""
        from reflectnb.store import otlp

        return otlp.export_otlp(self, path, run_ids)

    def _sweep_dead_runs(self) -> None:
        """Mark runs left ``running`` by a process of this host that is gone as ``interrupted``.

        A process is gone when its pid no longer exists, is a zombie, or now belongs to a
        process that started after the run did (pid reuse; both from Linux ``/proc``).
        """
        with self.db.connect() as con:
            stale = con.execute("SELECT run_id, pid, epoch(started_at) FROM runs "
                                "WHERE status = 'running' AND host = ?", [socket.gethostname()]).fetchall()
            dead = [run_id for run_id, pid, since in stale if pid is not None and not _alive(pid, since)]
            if dead:
                con.execute("""UPDATE runs SET status = 'interrupted',
                    error = coalesce(error, 'the process recording this run ended without closing it')
                    WHERE list_contains($ids, run_id)""", {"ids": dead})


def _alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs and (when known) started no later than ``since`` (Unix time)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state, started = _proc_stat(pid)
    if state == "Z":  # killed, not yet reaped by its parent
        return False
    return started is None or since is None or started <= since + 2.0  # /proc/stat btime has 1 s steps


def _proc_stat(pid: int) -> tuple[str | None, float | None]:
    """State letter and start (Unix time) of process ``pid`` from Linux ``/proc``; Nones elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return fields[0], boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None, None


def sql(query: str, params: Mapping[str, Any] | Sequence[Any] | None = None,
        path: str | os.PathLike | None = None, write: bool = False) -> pd.DataFrame:
    """Run SQL on the trace store at ``path`` (default: this directory's); returns a DataFrame.

    A read (``write=False``) never creates the file: a missing store is a :class:`TraceStoreError`.

    Examples
    --------
    >>> import reflectnb.store as traces
    >>> traces.sql("SELECT * FROM run_summary WHERE kind = $kind", {"kind": "reflect"}, path=":memory:").shape[0]
    0
    """
    return open_store(path, create=write).sql(query, params, write=write)

"""Opening the trace database: short transactions, shared by processes, with clear errors.

Contract
--------
DuckDB lets one *process* hold a database file, and while it does another
process cannot open it even read-only (TRACES.md §3.4). So a
:class:`Database` never keeps a file open: :meth:`Database.connect` opens it
for one short unit of work and closes it (closing also checkpoints, so the WAL
stays empty between writes). Writers and readers of the same file wait for
each other through

* a per-path ``threading.RLock`` (threads of this process), then
* an exclusive ``flock`` on ``<db>.lock`` (other reflectnb processes), then
* retries with backoff while DuckDB still reports a lock held by some other
  program, up to ``timeout`` seconds, after which a :class:`TraceStoreError`
  names the file, the holder and what to do.

``:memory:`` keeps one connection for the life of the process instead.

Bad files never lose data: a foreign or damaged file and a newer schema are
refused unchanged; a write-ahead log that cannot be replayed is renamed to
``<db>.wal.corrupt-<time>`` (never deleted) and the open is retried, with a
loud warning. Non-goals: network filesystems (file locks are unreliable there).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import duckdb

from reflectnb.errors import TraceStoreError
from reflectnb.store import schema

try:
    import fcntl
except ImportError:  # Windows: DuckDB's own lock + retries only
    fcntl = None  # type: ignore[assignment]

MEMORY = ":memory:"
LOCK_TIMEOUT = 30.0
_PATH_LOCKS: dict[str, threading.RLock] = {}
_PATH_LOCKS_GUARD = threading.Lock()


def _path_lock(path: str) -> threading.RLock:
    with _PATH_LOCKS_GUARD:
        return _PATH_LOCKS.setdefault(path, threading.RLock())


class Database:
    """One trace database path; hands out short-lived connections.

    Examples
    --------
    >>> db = Database(":memory:")
    >>> with db.connect() as con:
    ...     con.execute("SELECT count(*) FROM runs").fetchone()
    (0,)
    """

    def __init__(self, path: str, timeout: float | None = None):
        self.path = path if path == MEMORY else str(Path(path).expanduser().resolve())
        self.timeout = lock_timeout() if timeout is None else timeout
        self.lock = _path_lock(self.path)
        self._memory = duckdb.connect(MEMORY) if self.memory else None
        self.version_before = self._prepare()

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work; the file is closed again afterwards."""
        with self.lock:
            if self._memory is not None:
                cursor = self._memory.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
                return
            with self._file_lock():
                con = self._open(read_only)
                try:
                    yield con
                finally:
                    con.close()

    def _prepare(self) -> int:
        """Create the parent folder, then migrate the schema (once per open_store)."""
        if not self.memory:
            _make_parent(self.path)
        with self.connect() as con:
            return schema.migrate(con, self.path)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._wait(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), BlockingIOError)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {"python_enable_replacements": False}
        if read_only:  # a read never downloads or loads an extension (that writes ~/.duckdb)
            config.update(autoinstall_known_extensions=False, autoload_known_extensions=False)
        try:
            return self._wait(lambda: duckdb.connect(self.path, read_only=read_only, config=config),
                              duckdb.IOException, lambda e: "Could not set lock" in str(e))
        except duckdb.Error as exc:
            if "replaying WAL" not in str(exc) or not os.path.exists(self.path + ".wal"):
                raise open_error(self.path, exc) from None
            self._quarantine_wal(exc)
        try:
            return duckdb.connect(self.path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise open_error(self.path, exc) from None

    def _wait(self, attempt, retry_on, should_retry=lambda e: True):
        """``attempt()`` until it stops raising ``retry_on``, with jittered backoff."""
        deadline, delay = time.monotonic() + self.timeout, 0.005
        while True:
            try:
                return attempt()
            except retry_on as exc:
                if not should_retry(exc):
                    raise
                if time.monotonic() > deadline:
                    raise TraceStoreError(locked_message(self.path, exc, self.timeout)) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)

    def _quarantine_wal(self, exc: Exception) -> None:
        moved = f"{self.path}.wal.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(self.path + ".wal", moved)
        warnings.warn(f"reflectnb: the write-ahead log of {self.path} could not be replayed "
                      f"({str(exc).splitlines()[0][:200]}). It was moved to {moved} and the database "
                      "reopened without it: writes after the last checkpoint are missing from the "
                      "store (the moved file is kept for recovery).", RuntimeWarning, stacklevel=3)


def lock_timeout() -> float:
    """Seconds to wait for a locked file (``REFLECTNB_TRACE_LOCK_TIMEOUT``, default 30)."""
    try:
        return float(os.environ.get("REFLECTNB_TRACE_LOCK_TIMEOUT", LOCK_TIMEOUT))
    except ValueError:
        return LOCK_TIMEOUT


def _make_parent(path: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TraceStoreError(f"cannot create the folder for the trace database {path}: {exc.strerror}; "
                              "set REFLECTNB_TRACES to a writable path or ':memory:'") from None


def locked_message(path: str, exc: Exception, timeout: float) -> str:
    holder = str(exc).split("Conflicting lock is held in", 1)[-1].split(". See", 1)[0].strip()
    by = f" by {holder}" if "Conflicting lock" in str(exc) else " by another reflectnb process"
    return (f"the trace database {path} stayed locked{by} for {timeout:.0f} s. Close the program "
            "holding it open (a DuckDB shell, another tool), or set REFLECTNB_TRACES to another "
            "file for this notebook. Nothing was overwritten.")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full or a file-size limit (``ulimit -f``) was hit."""
    text = str(exc).lower()
    return any(s in text for s in ("no space left", "file too large", "disk full", "disk is full"))


def open_error(path: str, exc: Exception) -> TraceStoreError:
    """A TraceStoreError naming ``path`` and the fix for a DuckDB open/write failure."""
    text = str(exc)
    if "not a valid DuckDB database" in text:
        what = ("is not a DuckDB database (damaged, or another kind of file); reflectnb left it "
                "unchanged. Move it away, or set REFLECTNB_TRACES to another file")
    elif disk_full(exc):
        what = ("could not be written: the disk is full (or a file-size limit was hit). Free some "
                "space, or set REFLECTNB_TRACES to a path on another disk; existing data is intact")
    elif "version" in text.lower() and "storage" in text.lower():
        what = ("was written by a newer DuckDB storage format; upgrade duckdb (pip install -U duckdb) "
                "or use another trace file")
    else:
        what = "could not be opened or written"
    return TraceStoreError(f"the trace database {path} {what}. DuckDB said: {text.splitlines()[0][:300]}")

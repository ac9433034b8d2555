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

reflectnb's own writes (``connect(kept=True)``: the background writer) *attach*
the file to a small in-memory DuckDB instance kept per :class:`Database`
(``ATTACH … ; USE …`` then ``DETACH``) instead of ``duckdb.connect``: starting
a DuckDB instance costs ~20 ms (thread pool, built-in extensions, buffer
manager), the largest part of a traced run's end-of-run write, while attaching
costs ~2 ms. ``DETACH`` checkpoints and closes the file as ``close`` did, so
the file is held no longer than before. Users' SQL and every read keep a
connection of their own (read-only for reads), so nothing a query sets or
attaches outlives it. ``:memory:`` keeps one connection for the life of the
process instead.

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
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

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
        self._host_con: duckdb.DuckDBPyConnection | None = None  # the kept instance of connect(kept=True)
        self.alias = _alias(self.path)
        _DATABASES.add(self)
        self.version_before = self._prepare()

    @property
    def memory(self) -> bool:
        return self.path == MEMORY

    @contextlib.contextmanager
    def connect(self, read_only: bool = False, kept: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work; the file is closed again afterwards.

        ``kept=True`` (reflectnb's own SQL only, never a user's) attaches the file to
        this store's kept instance instead of starting a new one.
        """
        with self.lock:
            if self._memory is not None:
                cursor = self._memory.cursor()
                try:
                    yield cursor
                finally:
                    cursor.close()
                return
            with self._file_lock():
                if kept and not read_only:
                    con, close = self._open(self._attach), self._close_attached
                else:
                    con, close = self._open(lambda: self._connect(read_only)), duckdb.DuckDBPyConnection.close
                try:
                    yield con
                finally:
                    close(con)

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

    def _open(self, attempt: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
        """``attempt()`` with the waits for a held file, WAL quarantine and readable errors."""
        try:
            return self._wait(attempt, duckdb.IOException, lambda e: "Could not set lock" in str(e))
        except duckdb.Error as exc:
            if "replaying WAL" not in str(exc) or not os.path.exists(self.path + ".wal"):
                raise open_error(self.path, exc) from None
            self._quarantine_wal(exc)
        try:
            return attempt()
        except duckdb.Error as exc:
            raise open_error(self.path, exc) from None

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {"python_enable_replacements": False}
        if read_only:  # a read never downloads or loads an extension (that writes ~/.duckdb)
            config.update(autoinstall_known_extensions=False, autoload_known_extensions=False)
        return duckdb.connect(self.path, read_only=read_only, config=config)

    def _attach(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the kept instance, with the file attached and in use."""
        host = self._host()
        host.execute(f"ATTACH {_literal(self.path)} AS {_ident(self.alias)}")
        con = host.cursor()
        try:
            con.execute(f"USE {_ident(self.alias)}")
        except BaseException:
            con.close()
            self._detach()
            raise
        return con

    def _close_attached(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close the cursor (ending its transaction), then detach: checkpoint, release the file.

        Never raises a DuckDB error: after a COMMIT, an error would make the writer retry the rows twice.
        """
        try:
            with contextlib.suppress(duckdb.Error):
                con.close()
        finally:
            self._detach()

    def _detach(self) -> None:
        if self._host_con is None:
            return
        try:
            self._host_con.execute(f"DETACH DATABASE IF EXISTS {_ident(self.alias)}")
        except duckdb.Error:  # the file must not stay held: closing the instance releases it
            host, self._host_con = self._host_con, None
            with contextlib.suppress(duckdb.Error):
                host.close()

    def _host(self) -> duckdb.DuckDBPyConnection:
        """The kept in-memory instance (made on first use)."""
        if self._host_con is None:
            self._host_con = duckdb.connect(MEMORY, config={
                "python_enable_replacements": False,
                "temp_directory": self.path + ".tmp"})  # where a connection to the file would spill
        return self._host_con

    def _forget_host(self) -> None:
        """In a forked child: the parent's instance has no threads here; never touch it."""
        if self._host_con is not None:
            _ORPHANS.append(self._host_con)  # kept referenced, so its destructor never runs here
            self._host_con = None

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


def _alias(path: str) -> str:
    """The name DuckDB gives a file it opens (its stem), so ``current_database()`` reads as before."""
    stem = Path(path).stem or "traces"
    return f"{stem}_traces" if stem.lower() in _RESERVED else stem


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_RESERVED = {"memory", "system", "temp", "main"}
_DATABASES: weakref.WeakSet[Database] = weakref.WeakSet()
_ORPHANS: list[Any] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [db._forget_host() for db in list(_DATABASES)])


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

"""Where reflectnb keeps files, from environment variables with sensible defaults.

* ``REFLECTNB_CACHE`` — the converted embedded model and other caches; else
  ``$XDG_CACHE_HOME/reflectnb``, else ``~/.cache/reflectnb``.
* ``REFLECTNB_TRACES`` — the trace database; else ``.reflectnb/traces.duckdb`` in
  the current working directory. ``:memory:`` keeps traces in memory only.
* ``REFLECTNB_MODEL`` — the default model name (else ``smollm2-135m``).
* ``REFLECTNB_DTYPE`` — the dtype local models load in (else fp32 on a CPU,
  bf16/fp16 on a GPU).

Secrets (API keys) are read only by the backends that need them, never here.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """The directory for caches (created on demand by the code that writes it)."""
    if os.environ.get("REFLECTNB_CACHE"):
        return Path(os.environ["REFLECTNB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "reflectnb"


def trace_path() -> str:
    """The trace database path (a file path, or ``:memory:``)."""
    value = os.environ.get("REFLECTNB_TRACES")
    if value:
        return value if value == ":memory:" else str(Path(value).expanduser())
    return str(Path.cwd() / ".reflectnb" / "traces.duckdb")


def default_model() -> str:
    """The model used when none is named."""
    return os.environ.get("REFLECTNB_MODEL") or DEFAULT_MODEL


def default_dtype() -> str | None:
    """The dtype local models load in when none is named (``None``: the device's default)."""
    return os.environ.get("REFLECTNB_DTYPE") or None

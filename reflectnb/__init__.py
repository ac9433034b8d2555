"""reflectnb: study and teach LLM self-reflection inside Jupyter.

In a notebook::

    %load_ext reflectnb
    %reflectnb                      # version, model, where traces and the cache live

    %%reflect --rounds 3
    Write a limerick about a cat who learns calculus.

The same from Python::

    import reflectnb
    result = reflectnb.reflect("Write a limerick ...", rounds=3)

Importing this package is cheap: torch, transformers, DuckDB and anywidget are
imported only when first needed (``__getattr__`` from :mod:`reflectnb._lazy`), so ``%load_ext
reflectnb`` stays fast and saved traces can be read on a machine without torch.
"""

from __future__ import annotations

from reflectnb import _lazy
from reflectnb.version import __version__

_LAZY = {
    "load_model": ("reflectnb.backends", "load_model"),
    "known_models": ("reflectnb.backends", "known_models"),
    "GenerationParams": ("reflectnb.backends.base", "GenerationParams"),
    "Message": ("reflectnb.trace", "Message"),
    "generate": ("reflectnb.api", "generate"),
    "register_strategy": ("reflectnb.strategies.spec", "register_strategy"),
    "RunContext": ("reflectnb.strategies.context", "RunContext"),
    "view": ("reflectnb.api", "view"),
    "browse": ("reflectnb.widgets.browser", "browse"),
    "compare": ("reflectnb.evaluate.compare", "compare"),  # the function, even once its module is imported
    "traces": ("reflectnb.store", None),
}

BUILTIN_STRATEGIES = ("reflect", "critique", "debate", "tree", "self_consistency", "best_of_n")


def _strategy(name: str):
    """``reflectnb.<name>`` for a registered strategy (built in, from a plugin, or registered in this session)."""
    import importlib

    try:
        return getattr(importlib.import_module("reflectnb.api"), name)
    except AttributeError:
        raise AttributeError(f"module 'reflectnb' has no attribute {name!r}") from None


__all__ = ["__version__", "load_ipython_extension", *_LAZY, *BUILTIN_STRATEGIES]
__getattr__, __dir__ = _lazy.attach(__name__, _LAZY, __all__, fallback=_strategy)


def load_ipython_extension(ipython) -> None:
    """``%load_ext reflectnb``: register the magics (imports nothing heavy)."""
    from reflectnb.magics import ReflectMagics

    magics = ReflectMagics(ipython)
    ipython.register_magics(magics)
    magics.register_strategies()  # %%reflect, %%critique … and every strategy registered later


def unload_ipython_extension(ipython) -> None:
    """``%unload_ext reflectnb``: nothing to tear down; magics stay until restart."""

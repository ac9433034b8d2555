"""The one lazy loader: a package's public names, imported from their modules on first use.

Why: the names ``import reflectnb`` offers live in modules that import torch,
transformers, DuckDB or anywidget. :func:`attach` gives a package a PEP 562
module ``__getattr__`` that imports a name's module only when the name is first
read, then keeps the value in the package's namespace so later reads cost
nothing; ``import reflectnb`` and ``%load_ext reflectnb`` stay cheap (tested in
a subprocess by ``tests/test_architecture.py``).

A table maps each public name to ``(module, attribute)``; ``attribute=None``
stands for the module itself (``reflectnb.traces`` is ``reflectnb.store``).
:func:`by_module` builds such a table from ``{submodule: names}``. A name that
is also its submodule's name (``reflectnb.evaluate.compare``, the function in
``compare.py``) stays the function after the submodule is imported: Python sets
a package's attribute to each submodule it imports, which would hide it.

Non-goals: lazy submodules of third-party packages (``lazy_loader``'s job; our
tables also alias modules and point across packages, which it does not).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, Callable, Iterable, Mapping

Table = Mapping[str, "tuple[str, str | None]"]


def by_module(package: str, where: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, str | None]]:
    """``{name: (package.submodule, name)}`` from ``{submodule: names}``.

    Examples
    --------
    >>> by_module("pkg", {"parse": ("GRAMMAR", "parse_schedule")})
    {'GRAMMAR': ('pkg.parse', 'GRAMMAR'), 'parse_schedule': ('pkg.parse', 'parse_schedule')}
    """
    return {name: (f"{package}.{module}", name) for module, names in where.items() for name in names}


def attach(package: str, table: Table, public: Iterable[str] | None = None,
           fallback: Callable[[str], Any] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``__dir__`` lists ``public`` (default: the table's names).

    ``fallback(name)`` is asked for a public name the table lacks (``reflectnb.<strategy>``:
    registered at run time) and raises ``AttributeError`` for names it does not know.

    Examples
    --------
    >>> __getattr__, __dir__ = attach(__name__, {"dumps": ("json", "dumps")})   # doctest: +SKIP
    """
    names = sorted(public if public is not None else table)
    same = {name for name, (where, attribute) in table.items() if where == f"{package}.{name}" and attribute}
    if same:
        sys.modules[package].__class__ = _KeepsNames
        sys.modules[package].__dict__["_keeps_names"] = same

    def __getattr__(name: str) -> Any:
        if name not in table:
            if fallback is None or name.startswith("_"):
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            return fallback(name)
        module_name, attribute = table[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        setattr(sys.modules[package], name, value)  # the next read skips __getattr__
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__


class _KeepsNames(types.ModuleType):
    """A package whose submodule ``x`` defines its public name ``x``: importing the submodule keeps the name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_keeps_names", ()) and isinstance(value, types.ModuleType):
            value = getattr(value, name, value)  # the import system setting package.x = <module x>
        super().__setattr__(name, value)

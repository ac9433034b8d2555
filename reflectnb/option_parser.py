"""The one ``argparse`` parser of every magic: it raises :class:`~reflectnb.errors.OptionError` instead of exiting.

``argparse`` prints and calls ``sys.exit`` on a bad option, which would kill a
notebook cell's output with a traceback. Every magic's parser (the strategy
magics, ``%reflect_eval``, ``%reflect_sql``) is an :class:`OptionParser`, so
every bad option reads the same way: the magic as typed, argparse's message, and
where the options are listed. It sits in the bottom layer so the store's
``%reflect_sql`` can use it as well as the magics.

Examples
--------
>>> p = OptionParser(prog="demo", add_help=False)
>>> p.magic = "%demo"
>>> p.parse_args(["--bogus"])
Traceback (most recent call last):
...
reflectnb.errors.OptionError: %demo: unrecognized arguments: --bogus  (see `%demo?` for the options)
"""

from __future__ import annotations

import argparse

from reflectnb.errors import OptionError


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting.

    ``magic`` is how the user typed the magic (``%%reflect`` for a cell magic,
    ``%reflect_eval`` for a line magic), so the error line points at a help that
    IPython can find: ``%%reflect?``.
    """

    magic = ""

    def error(self, message: str):  # type: ignore[override]
        magic = self.magic or f"%{self.prog}"
        raise OptionError(f"{magic}: {message}  (see `{magic}?` for the options)")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        raise OptionError(message or f"{self.magic or self.prog}: bad options")

"""One real IPython shell per test, left as it was found.

``InteractiveShell.instance()`` is a process-wide singleton: a variable one test
leaves in ``user_ns`` (or a ``%config ReflectMagics...`` it sets) is seen by every
later test, so results would depend on test order. :func:`clean_shell` yields the
shell with the extension loaded, then removes every variable the test added,
restores the ones it changed, and puts the magics' ``%config`` traits back.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from IPython.core.interactiveshell import InteractiveShell


@contextlib.contextmanager
def clean_shell() -> Iterator[InteractiveShell]:
    """The shared shell with ``reflectnb`` loaded; its namespace and config are restored afterwards."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "reflectnb")
    magics = shell.magics_manager.registry["ReflectMagics"]
    config = {name: getattr(magics, name) for name in magics.trait_names(config=True)}
    before = dict(shell.user_ns)
    try:
        yield shell
    finally:
        for name in set(shell.user_ns) - set(before):
            del shell.user_ns[name]
        shell.user_ns.update(before)
        for name, value in config.items():
            if getattr(magics, name) != value:
                setattr(magics, name, value)

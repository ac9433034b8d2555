"""Where the built front-end bundles live, with a clear error when they are missing.

The bundles are produced by ``npm --prefix js run build`` (the package build runs it
through hatch-jupyter-builder); they are never edited or committed by hand.
"""

from __future__ import annotations

from pathlib import Path

from reflectnb.errors import ReflectnbError

STATIC = Path(__file__).resolve().parent.parent / "static"


def bundle(name: str) -> Path:
    """The path of ``reflectnb/static/<name>.js``; raises if the build has not run."""
    path = STATIC / f"{name}.js"
    if not path.is_file():
        raise ReflectnbError(
            f"the widget bundle {path} is missing: build the front-end with "
            "`npm --prefix js ci && npm --prefix js run build` (or reinstall reflectnb)"
        )
    return path

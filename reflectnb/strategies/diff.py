"""Word-level differences between two drafts (what a refinement changed).

:func:`diff_ops` returns structured operations (for views and tests);
:func:`diff_html` renders them with ``<del>``/``<ins>``, every piece of text
passed through ``html.escape``. Words keep their leading whitespace, so
joining the ``a`` sides gives the old draft and the ``b`` sides the new one.

Non-goals: character-level or semantic diffs.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DiffOp:
    """One operation: ``equal``, ``insert``, ``delete`` or ``replace``; ``a`` old text, ``b`` new text."""

    op: str
    a: str
    b: str

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op, "a": self.a, "b": self.b}


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+$", text)


def diff_ops(old: str, new: str) -> list[DiffOp]:
    """Word-level operations turning ``old`` into ``new``.

    Examples
    --------
    >>> [(d.op, d.a, d.b) for d in diff_ops("the cat sat", "the dog sat")]
    [('equal', 'the', 'the'), ('replace', ' cat', ' dog'), ('equal', ' sat', ' sat')]
    """
    a, b = _words(old), _words(new)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [DiffOp(tag, "".join(a[i1:i2]), "".join(b[j1:j2]))
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()]


def diff_html(old: str, new: str) -> str:
    """The diff as escaped HTML: deletions in ``<del>``, insertions in ``<ins>``.

    Examples
    --------
    >>> diff_html("a <b>", "a <i>")
    "<span class='reflectnb-diff'>a<del> &lt;b&gt;</del><ins> &lt;i&gt;</ins></span>"
    """
    parts = []
    for d in diff_ops(old, new):
        if d.op == "equal":
            parts.append(html.escape(d.b))
            continue
        if d.a:
            parts.append(f"<del>{html.escape(d.a)}</del>")
        if d.b:
            parts.append(f"<ins>{html.escape(d.b)}</ins>")
    return "<span class='reflectnb-diff'>" + "".join(parts) + "</span>"


def similarity(old: str, new: str) -> float:
    """Word-level similarity ratio in [0, 1] (1 = unchanged)."""
    return difflib.SequenceMatcher(a=_words(old), b=_words(new), autojunk=False).ratio()

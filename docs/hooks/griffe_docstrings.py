"""Griffe extension: make reflectnb's Sphinx-flavoured numpy docstrings render as Markdown.

The code's docstrings use Sphinx roles (``:class:`~reflectnb.trace.Recorder```),
which mkdocstrings would show literally. This extension, loaded by the
mkdocstrings handler (``extensions:`` in ``mkdocs.yml``), rewrites each role
into an optional cross-reference: a link where the target is on the site,
plain code where it is not (never a build warning). With ``~`` only the last
name is shown, as in Sphinx. ``# doctest: +SKIP`` directives are dropped from
the examples shown (they are for the test runner, not the reader).

It also closes a numpy section that a free paragraph follows by mistake (a
``Parameters`` list, then a blank line, then prose such as "If interrupted,
..."): the paragraph is moved under a ``Notes`` heading instead of being read
as a parameter named "If". Each such repair is logged at INFO with the
object's path so the docstring can be fixed at the source.

Non-goals: resolving relative names (``:class:`Task```) against imports.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import griffe

LOG = logging.getLogger("mkdocs.hooks.griffe_docstrings")
DOCTEST_DIRECTIVE = re.compile(r"^(\s*(?:>>>|\.\.\.).*?)\s*# doctest:.*$", re.MULTILINE)
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`<>]+?)`")
NAMED_SECTIONS = {"Parameters", "Other Parameters", "Attributes"}  # whose items are "name" or "name : type"
ITEM = re.compile(r"^\*{0,2}[A-Za-z_]\w*(\s*,\s*\*{0,2}[A-Za-z_]\w*)*\s*(:.*)?$")


def roles_to_markdown(text: str) -> str:
    """Replace Sphinx roles by autorefs that link when the target exists.

    Examples
    --------
    >>> roles_to_markdown("a :class:`~reflectnb.trace.Recorder`")
    'a <autoref identifier="reflectnb.trace.Recorder" optional><code>Recorder</code></autoref>'
    """
    def link(match: re.Match[str]) -> str:
        tilde, target = match.groups()
        target = target.strip().removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if tilde else target
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return ROLE.sub(link, text)


def close_list_sections(text: str) -> tuple[str, bool]:
    """Put a free paragraph that follows a numpy parameter list under ``Notes``; report whether it did.

    Examples
    --------
    >>> close_list_sections("Parameters\\n----------\\nx : int\\n\\nIf x is 0, nothing happens.")[0].splitlines()[3:]
    ['', 'Notes', '-----', 'If x is 0, nothing happens.']
    """
    lines, out, section, changed = text.splitlines(), [], None, False
    for i, line in enumerate(lines):
        underline = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if underline:
            section = line.strip()
        elif (section in NAMED_SECTIONS and line.strip() and not line.startswith((" ", "\t"))
              and i > 0 and not lines[i - 1].strip() and not ITEM.match(line.strip())):
            out += ["Notes", "-----"]
            section, changed = "Notes", True
        out.append(line)
    return "\n".join(out), changed


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrite every docstring as it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        value, changed = close_list_sections(obj.docstring.value)
        if changed:
            LOG.info("docstring of %s: a paragraph after a list section was moved under Notes", obj.path)
        obj.docstring.value = DOCTEST_DIRECTIVE.sub(r"\1", roles_to_markdown(value))

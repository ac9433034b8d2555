"""Notebook widgets (anywidget): live run views, token views, tree views and the run browser, with static fallbacks.

Layer 6: widgets hold display state and message handlers only; no loop logic.
The front-end lives in ``js/`` and is bundled into ``reflectnb/static/``.
"""

from reflectnb.widgets.browser import RunBrowser
from reflectnb.widgets.html import render_steps_html, render_tokens_html
from reflectnb.widgets.live import LiveView
from reflectnb.widgets.tokens import TokenView
from reflectnb.widgets.tree import TreeView

__all__ = ["LiveView", "RunBrowser", "TokenView", "TreeView", "render_steps_html", "render_tokens_html"]

"""Model output with markup is text in every view and export — proven in Chromium: no script runs.

A scripted model answers every prompt with a ``<script>`` tag, an ``<img onerror>``
and a ``javascript:`` link, and the prompts hold the same markup. Each reflectnb view
is rendered in JupyterLab — live views of reflect, critique and both debates (from the
Python API and from ``%%reflect``/``%%debate``), tree views (live from ``%%tree``, and
one with a node selected, its details panel open; a refinement chain and a debate graph
opened with ``reflectnb.view``), the token view, the result objects' HTML (``--no-stream``,
trees too), ``%reflect_sql`` tables; then the saved notebook is exported
with nbconvert and the HTML file opened in Chromium too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from drive import cell_node, errors, open_notebook, run_cell
from reliability_counts import record

pytestmark = pytest.mark.browser

HOSTILE = ('<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
           '<a href="javascript:window.__xss=1">click me</a>')

SETUP = f"""import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.trace import TokenEvent
from reflectnb.widgets import TokenView
H = {HOSTILE!r}
def bot():
    return ScriptedBackend(lambda prompt, i: H + "\\nThe answer is 4")
b = bot()
%load_ext reflectnb"""

# (cell, the view its output must show, whether the hostile markup must be readable there as text:
#  tree views draw node labels on a canvas, so their text is checked in the details panel instead)
CELLS = [
    ("reflectnb.reflect(H, model=bot(), rounds=1, live=True)", ".rnb-live", True),
    ("reflectnb.critique(H, model=bot(), rounds=1, live=True)", ".rnb-live", True),
    ("reflectnb.debate(H, model=bot(), method='du', agents=2, rounds=1, live=True)", ".rnb-live", True),
    ("reflectnb.debate(H, model=bot(), method='mad', rounds=1, live=True)", ".rnb-live", True),
    ("t = reflectnb.tree(H, model=bot(), method='bfs', depth=1, branch=2, beam=1, live=True); t", ".rnb-tree", False),
    ("v = reflectnb.view(t); v.selected = 1; v", ".rnb-tree-details", True),
    ("TokenView([TokenEvent(row=0, position=i, token_id=i, text=part, logprob=-1.0, entropy=1.0)"
     " for i, part in enumerate([H[:20], H[20:]])])", ".rnb-tokens", True),
    ("%%reflect -m b --rounds 1\n{H}", ".rnb-live", True),
    ("%%debate -m b --agents 2 --rounds 1\n{H}", ".rnb-live", True),
    ("%%tree -m b --method bfs --depth 1 --branch 2\n{H}", ".rnb-tree", False),
    ("%%reflect -m b --rounds 1 --no-stream\n{H}", ".jp-RenderedHTMLCommon", True),
    ("%%critique -m b --rounds 1 --no-stream\n{H}", ".jp-RenderedHTMLCommon", True),
    ("%%tree -m b --method bfs --depth 1 --branch 2 --no-stream\n{H}", ".jp-RenderedHTMLCommon", True),
    ("c = reflectnb.view(reflectnb.reflect(H, model=bot(), rounds=1)); c.selected = 1; c", ".rnb-tree-details", True),
    ("g = reflectnb.view(reflectnb.debate(H, model=bot(), method='du', agents=2, rounds=1)); g.selected = 1; g",
     ".rnb-tree-details", True),
    ("%reflect_sql SELECT kind, task, final_answer FROM runs ORDER BY started_at", "table", True),
]
LITERAL = "<script>window.__xss=1</script>"

CHECK = """() => ({
  xss: window.__xss === undefined ? null : window.__xss,
  injected: document.querySelectorAll('.jp-OutputArea img[src="x"], [onerror], a[href^="javascript:"]').length,
  scripts: [...document.querySelectorAll('.jp-OutputArea script, body script')]
             .filter((s) => s.textContent.includes('__xss')).length,
})"""


# A control image with the hostile markup's failing ``src``, made after every output: once its error event has
# fired, the load the outputs' images share (the same URL, the same cached resource) has failed too, so any
# injected onerror handler would have run. An event to wait for, instead of a fixed sleep.
CONTROL = """() => { window.__control = undefined; const img = new Image();
  img.onerror = () => { window.__control = 'error'; }; img.onload = () => { window.__control = 'load'; };
  img.src = 'x'; }"""


def settle_image_loads(page) -> None:
    page.evaluate(CONTROL)
    page.wait_for_function("() => window.__control !== undefined", timeout=10_000)
    assert page.evaluate("() => window.__control") == "error"  # the control really failed to load


def assert_inert(page) -> None:
    settle_image_loads(page)
    state = page.evaluate(CHECK)
    assert state == {"xss": None, "injected": 0, "scripts": 0}, state


def test_hostile_model_output_is_text_in_every_view_in_jupyterlab_and_in_the_html_export(page, lab):
    name = lab.notebook("xss.ipynb", [SETUP] + [source for source, _, _ in CELLS])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    for i, (source, view, readable) in enumerate(CELLS, start=1):
        assert errors(run_cell(page, i)) == [], source
        shown = cell_node(page, i).locator(view).first
        shown.wait_for(timeout=30_000)  # the view rendered
        if readable:  # the markup is on screen as literal text
            page.wait_for_function("([el, text]) => el.innerText.includes(text)", arg=[shown.element_handle(), LITERAL],
                                   timeout=10_000)
    assert "prompt" in cell_node(page, 6).locator(".rnb-tree-details").text_content()
    clicked_live = click_every_link_like_text(page)
    assert_inert(page)
    assert "/lab" in page.url  # the link-like text navigated nowhere

    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")  # waits for the save's promise
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(lab.root / name)],
                   check=True, capture_output=True, timeout=120)
    page.goto((lab.root / name).with_suffix(".html").as_uri())
    page.wait_for_load_state("load")
    exported = page.locator(".jp-Cell")
    assert exported.count() == len(CELLS) + 1
    for i, (source, _, _) in enumerate(CELLS, start=1):  # each result's static version shows the markup as text
        shown = exported.nth(i).locator(".jp-OutputArea").text_content()
        assert LITERAL in shown, f"the export of {source!r} does not show the markup as text"
    clicked_export = click_every_link_like_text(page)
    assert_inert(page)
    assert page.url.endswith(".html")
    record("hostile_output", part="JupyterLab views and their nbconvert export", views=len(CELLS),
           exported_outputs=len(CELLS), links_clicked=clicked_live + clicked_export, scripts_run=0, navigated=0)


def click_every_link_like_text(page) -> int:
    """Click the ``click me`` of every output that shows it as visible text (a live link would navigate away)."""
    links = page.locator(".jp-OutputArea").get_by_text("click me", exact=False)
    clicked = 0
    for link in links.all():
        if link.is_visible():
            link.click()
            clicked += 1
    assert clicked >= 5, f"only {clicked} outputs showed the link-like text"
    return clicked

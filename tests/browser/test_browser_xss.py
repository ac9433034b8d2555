"""Model output with markup is text in every view and export — proven in Chromium: no script runs.

A scripted model answers every prompt with a ``<script>`` tag, an ``<img onerror>``
and a ``javascript:`` link. Each reflectnb view (live views of reflect, critique and
both debates, the tree view with a node selected, the token view, the result
objects' HTML, ``%reflect_sql`` tables) is rendered in JupyterLab; then the saved
notebook is exported with nbconvert and the HTML file opened in Chromium too.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from drive import errors, open_notebook, run_cell

pytestmark = pytest.mark.browser

HOSTILE = ('<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
           '<a href="javascript:window.__xss=1">click me</a>')

CELLS = [
    f"""import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
from reflectnb.trace import TokenEvent
from reflectnb.widgets import TokenView
H = {HOSTILE!r}
def bot():
    return ScriptedBackend(lambda prompt, i: H + "\\nThe answer is 4")""",
    "reflectnb.reflect(H, model=bot(), rounds=1, live=True)",
    "reflectnb.critique(H, model=bot(), rounds=1, live=True)",
    "reflectnb.debate(H, model=bot(), method='du', agents=2, rounds=1, live=True)",
    "reflectnb.debate(H, model=bot(), method='mad', rounds=1, live=True)",
    "t = reflectnb.tree(H, model=bot(), method='bfs', depth=1, branch=2, beam=1, live=True); t",
    "v = reflectnb.view(t); v.selected = 1; v",
    "TokenView([TokenEvent(row=0, position=i, token_id=i, text=part, logprob=-1.0, entropy=1.0)"
    " for i, part in enumerate([H[:20], H[20:]])])",
    "%reflect_sql SELECT kind, final_answer FROM runs ORDER BY started_at",
]

CHECK = """() => ({
  xss: window.__xss === undefined ? null : window.__xss,
  injected: document.querySelectorAll('.jp-OutputArea img[src="x"], [onerror], a[href^="javascript:"]').length,
  scripts: [...document.querySelectorAll('.jp-OutputArea script, body script')]
             .filter((s) => s.textContent.includes('__xss')).length,
})"""


def assert_inert(page) -> None:
    state = page.evaluate(CHECK)
    assert state == {"xss": None, "injected": 0, "scripts": 0}, state


def test_hostile_model_output_is_text_in_every_view_in_jupyterlab_and_in_the_html_export(page, lab):
    name = lab.notebook("xss.ipynb", CELLS)
    open_notebook(page, lab, name)
    for i in range(len(CELLS)):
        assert errors(run_cell(page, i)) == [], CELLS[i]
    page.wait_for_timeout(1000)  # let every widget render and image loads fail
    for selector in [".rnb-live", ".rnb-tree", ".rnb-tokens"]:
        assert page.locator(selector).count() >= 1, f"{selector} did not render"
    assert page.locator(".rnb-live").count() == 4 + 0 and page.locator(".rnb-tree").count() == 2
    literal = page.get_by_text("<script>window.__xss=1</script>", exact=False)
    assert literal.count() >= 5  # shown as text, not run
    assert "prompt" in page.locator(".rnb-tree-details").nth(1).inner_text()
    page.get_by_text("click me", exact=False).first.click()
    assert_inert(page)
    assert "/lab" in page.url  # the link-like text navigated nowhere

    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(500)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(lab.root / name)],
                   check=True, capture_output=True, timeout=120)
    page.goto((lab.root / name).with_suffix(".html").as_uri())
    page.wait_for_load_state("load")
    page.wait_for_timeout(1000)
    body = page.locator("body").inner_text()
    assert body.count("<script>window.__xss=1</script>") >= 5 and "click me" in body
    page.get_by_text("click me", exact=False).first.click()
    assert_inert(page)

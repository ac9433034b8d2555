"""The run browser in a real JupyterLab: pages from the kernel, filter, sort, open a run, tag it; text stays text."""

from __future__ import annotations

import pytest
from drive import cell_node, errors, open_notebook, run_cell, text_of

pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
SETUP = f"""import reflectnb
from reflectnb.backends.scripted import ScriptedBackend
reflectnb.reflect("Say hi", model="scripted:hello there|looks good STOP", rounds=1)
reflectnb.reflect("Echo", model=ScriptedBackend([{HOSTILE!r}, "fine STOP"]), rounds=1)
reflectnb.debate("Is 2 prime?", model=ScriptedBackend(lambda p, i: "Yes. The answer is 2"), agents=2, rounds=1)
%load_ext reflectnb
"""


def test_the_browser_filters_sorts_opens_and_tags_runs_in_jupyterlab(page, lab):
    read_tags = "print('tags:', reflectnb.traces.sql('SELECT unnest(tags) AS t FROM run_tag_list')['t'].tolist())"
    name = lab.notebook("runs.ipynb", [SETUP, "browser = %reflect_runs\nbrowser", read_tags])
    open_notebook(page, lab, name)
    assert errors(run_cell(page, 0)) == []
    assert errors(run_cell(page, 1)) == []
    root = cell_node(page, 1).locator(".rnb-browser")
    root.wait_for(timeout=30_000)  # fails if reflectnb/static/browser.js is missing or broken
    handle = root.element_handle()
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.rows === '3'", arg=handle)
    assert page.evaluate("() => window.__xss === undefined")
    assert HOSTILE in root.locator(".rnb-browser-table").inner_text()

    root.locator("th[data-sort=duration]").click()  # sorted in the kernel: a request and its reply
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.querySelector('th[data-sort=duration]')"
                           ".textContent.includes('▼')", arg=handle)
    root.locator("select[data-field=kind]").select_option("debate")
    page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.total === '1'", arg=handle)

    root.locator(".rnb-browser-row").first.click()
    cell_node(page, 1).locator(".rnb-tree").wait_for(timeout=30_000)  # the debate's view, shown below
    root.locator(".rnb-browser-tag-input").fill("checked")
    root.locator(".rnb-browser-add-tag").click()
    page.wait_for_function("(el) => el.querySelector('.rnb-browser-tags').textContent === 'checked'", arg=handle)
    assert "tags: ['checked']" in text_of(run_cell(page, 2))
    assert page.evaluate("() => window.__xss === undefined")

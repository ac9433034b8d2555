"""Browser latency in a real JupyterLab + headless Chromium (the browser tests' server and driver).

(a) Time to the first rendered token: from starting a ``%%reflect`` cell on the
    embedded model to the first streamed text visible in the live view (a
    MutationObserver in the page timestamps it), compared with the time to the
    first token of a plain ``backend.generate`` on the same prompt in the same
    kernel (measured inside the kernel). The difference is what reflectnb adds
    before the first token shows: cell dispatch, the loop set-up, the trace run,
    the widget's first sync and the page's render.
(b) The tree view's first render at 10,000 nodes: ``data-first-render-ms`` (from
    the front-end's render() to the first full frame, layout in the worker
    included) and the wall time from starting the cell to ``data-state=ready``
    (Python building the columns and the comm transfer included).

Medians of ``--repeats`` runs, in one session; JSON to ``benchmarks/results/browser.json``.

    python benchmarks/bench_browser.py [--repeats 3]
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from browser_setup import arguments, lab_page
from drive import cell_node, open_notebook, run_cell, start_cell, text_of, wait_cell  # on sys.path: browser_setup

RESULTS = Path(__file__).resolve().parent / "results" / "browser.json"

QUESTION = "Explain in two sentences why the sky is blue."
CELLS = [
    "%load_ext reflectnb\nimport time, reflectnb\nfrom reflectnb.backends.base import GenerationParams\n"
    "from reflectnb.trace import Message\nm = reflectnb.load_model('smollm2-135m')\n"
    "m.generate_one('warm up', GenerationParams(max_new_tokens=4))",
    "first = []\nt0 = time.perf_counter()\n"
    f"m.generate([[Message('user', {QUESTION!r})]], GenerationParams(max_new_tokens=48),\n"
    "           on_token=lambda e: first or first.append(time.perf_counter() - t0))\nprint('FIRST', first[0])",
    f"%%reflect --model smollm2-135m --rounds 1 --max-tokens 48\n{QUESTION}",
    "from reflectnb.strategies.tree import TreeResult\nfrom reflectnb.widgets import TreeView\n"
    "rows = [{'node_id': i, 'parent': None if i == 0 else (i - 1) // 10, 'depth': 0, 'text': f'step {i}',\n"
    "         'value': (i % 7) / 6, 'visits': 1, 'status': 'expanded', 'iteration': i // 500} for i in range(10_000)]\n"
    "big = TreeResult.rebuild_from_rows(rows, method='synthetic')",
    "TreeView.from_result(big)",
]

WATCH_FIRST_TOKEN = """() => {
  window.__first = null; window.__t0 = performance.now();
  const seen = () => [...document.querySelectorAll('.rnb-live .rnb-streaming')].some((n) => n.textContent.trim());
  const obs = new MutationObserver(() => { if (window.__first === null && seen()) { window.__first = performance.now(); obs.disconnect(); } });
  obs.observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def main() -> None:
    args = arguments(__doc__, repeats=3)
    with lab_page() as (lab, page):
        open_notebook(page, lab, lab.notebook("bench.ipynb", CELLS))
        run_cell(page, 0)
        kernel, browser_first, tree_first, tree_wall = [], [], [], []
        for _ in range(args.repeats):
            out = text_of(run_cell(page, 1))
            kernel.append(float(out.split("FIRST")[1].split()[0]))
            page.evaluate(WATCH_FIRST_TOKEN)
            start_cell(page, 2)
            page.wait_for_function("() => window.__first !== null", timeout=120_000, polling="raf")
            browser_first.append((page.evaluate("() => window.__first - window.__t0")) / 1000)
            wait_cell(page)
        run_cell(page, 3)
        for _ in range(args.repeats):
            started = time.perf_counter()
            start_cell(page, 4)
            wait_cell(page)
            root = cell_node(page, 4).locator(".rnb-tree")
            page.wait_for_function("(el) => el.dataset.state === 'ready' && el.dataset.firstRenderMs",
                                   arg=root.element_handle(), timeout=60_000, polling="raf")
            tree_wall.append(time.perf_counter() - started)
            tree_first.append(float(root.get_attribute("data-first-render-ms")))
    med = statistics.median
    report = {
        "first_token": {"kernel_plain_generate_s": med(kernel), "browser_reflect_cell_s": med(browser_first),
                        "added_s": med(browser_first) - med(kernel), "ratio": med(browser_first) / med(kernel),
                        "runs": {"kernel": kernel, "browser": browser_first}},
        "tree_view_10k": {"first_render_ms": med(tree_first), "cell_start_to_ready_s": med(tree_wall),
                          "runs": {"first_render_ms": tree_first, "wall_s": tree_wall}},
        "repeats": args.repeats, "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg(),
    }
    print(f"first token: plain generate in the kernel {med(kernel):.3f} s; %%reflect cell -> first token rendered "
          f"in Chromium {med(browser_first):.3f} s (+{report['first_token']['added_s']:.3f} s)")
    print(f"tree view, 10,000 nodes: first render {med(tree_first):.0f} ms (front-end); cell start -> ready "
          f"{med(tree_wall):.2f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

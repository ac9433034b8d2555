"""Run-browser benchmark in Chromium: first render and filter round-trips over 100,000 runs, timed in the page.

A trace file gets ``--runs`` synthetic runs (``bench_browse.make_store``: four kinds, three
models, texts of a few hundred characters). A real JupyterLab (the browser tests' server) runs
``reflectnb.browse(path)`` in a notebook, driven by headless Debian Chromium through Playwright.
Every time is taken with ``performance.now()`` in the page; the widget stamps
``data-drawn-at`` (rows built) and ``data-requested-at`` (request sent) on its root, and the
waits poll once per animation frame, so "drawn" means the frame after the rows were built:

* first render: from starting the cell to the first page's rows drawn — the kernel building
  the widget (filter choices and first page by DuckDB), the comm, the widget manager and the
  front-end's render — goal < 1 s; the front-end's own part (``data-first-render-ms``) too;
* filter round-trip: from changing the kind filter (a ``change`` event) to the filtered rows
  drawn — goal < 200 ms;
* search round-trip: typing ``task number 42`` (real key presses), from the request the
  debounced search sends to the rows drawn — goal < 200 ms; also from the last key press
  (which includes the front-end's 250 ms debounce).

Medians of ``--repeats``. Usage: ``python benchmarks/bench_browser_runs.py [--runs 100000] [--repeats 5]``.
Writes ``benchmarks/results/browser_runs.json``.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench_browse import synthetic_store
from browser_setup import arguments, lab_page, print_figures
from drive import cell_node, errors, open_notebook, run_cell, start_cell, wait_cell  # on sys.path: browser_setup
from report import Goal, write_result

KINDS = ["reflect", "debate", "tree", ""]

FIRST_DRAWN = """([cell, t0, rows]) => {
  const el = document.querySelectorAll('.jp-Notebook .jp-Cell')[cell].querySelector('.rnb-browser');
  return el && el.dataset.drawnAt && Number(el.dataset.drawnAt) > t0 && el.dataset.rows === rows
    ? performance.now() - t0 : false; }"""
REDRAWN = """([el, t0]) => el.dataset.state === 'ready' && Number(el.dataset.drawnAt) > t0
  ? [performance.now() - t0, Number(el.dataset.drawnAt) - t0, Number(el.dataset.drawnAt) - Number(el.dataset.requestedAt)]
  : false"""
CHANGE_KIND = """([el, kind]) => { const box = el.querySelector('select[data-field=kind]'); box.value = kind;
  const t0 = performance.now(); box.dispatchEvent(new Event('change')); return t0; }"""
WATCH_KEYS = """(el) => { window.__lastKey = 0; el.querySelector('.rnb-browser-search')
  .addEventListener('input', () => { window.__lastKey = performance.now(); }, true); }"""


def first_render(page, repeats: int) -> tuple[list[float], list[float]]:
    """Cell start → rows drawn (ms), and the front-end's own render time (ms), per repeat."""
    wall, front = [], []
    for _ in range(repeats):
        t0 = page.evaluate("() => performance.now()")
        start_cell(page, 1)
        wall.append(page.wait_for_function(FIRST_DRAWN, arg=[1, t0, "50"], polling="raf", timeout=60_000).json_value())
        wait_cell(page)
        front.append(float(cell_node(page, 1).locator(".rnb-browser").get_attribute("data-first-render-ms")))
    return wall, front


def filter_trips(page, root, repeats: int) -> list[list[float]]:
    """Kind filter changed → rows drawn: [frame after drawn, drawn, request → drawn] in ms, per repeat."""
    trips = []
    for i in range(repeats):
        t0 = page.evaluate(CHANGE_KIND, [root, KINDS[i % len(KINDS)]])
        trips.append(page.wait_for_function(REDRAWN, arg=[root, t0], polling="raf", timeout=30_000).json_value())
    return trips


def search_trips(page, root, repeats: int) -> list[list[float]]:
    """Typing a search → rows drawn, measured from the last key press: [frame, drawn, request → drawn] in ms."""
    page.evaluate(WATCH_KEYS, root)
    box = page.locator(".rnb-browser-search").last
    trips = []
    for i in range(repeats):
        box.fill("")
        page.wait_for_function("(el) => el.dataset.state === 'ready'", arg=root)
        page.wait_for_timeout(400)  # the empty search's own request has come back
        box.press_sequentially(f"task number {42 + i}", delay=40)
        t0 = page.evaluate("() => window.__lastKey")
        trips.append(page.wait_for_function(REDRAWN, arg=[root, t0], polling="raf", timeout=30_000).json_value())
    return trips


def measure(path: Path, runs: int, repeats: int) -> dict:
    with lab_page() as (lab, page):
        open_notebook(page, lab, lab.notebook("bench_runs.ipynb", ["import reflectnb",
                                                                   f"reflectnb.browse({str(path)!r})"]))
        assert errors(run_cell(page, 0)) == []
        run_cell(page, 1)  # warm: the widget manager loads the bundle once
        wall, front = first_render(page, repeats)
        root = cell_node(page, 1).locator(".rnb-browser").element_handle()
        assert root.get_attribute("data-total") == str(runs)
        kinds = filter_trips(page, root, repeats)
        search = search_trips(page, root, repeats)
    med = statistics.median
    return {"runs": runs, "repeats": repeats,
            "first_render_s": med(wall) / 1000, "front_end_render_ms": med(front),
            "filter_round_trip_s": med(k[0] for k in kinds) / 1000,
            "search_request_to_rows_s": med(s[2] for s in search) / 1000,
            "search_last_key_to_rows_s": med(s[0] for s in search) / 1000,
            "raw_ms": {"first_render": wall, "front_end_render": front, "filter": kinds, "search": search}}


def main() -> None:
    args = arguments(__doc__, repeats=5, runs=100_000)
    with synthetic_store(args.runs) as path:
        report = measure(path, args.runs, args.repeats)
    print_figures(report)
    write_result("browser_runs", report, [
        Goal(f"browser first render in Chromium, {args.runs:,} runs (cell start → rows drawn)",
             report["first_render_s"], "<", 1.0, " s"),
        Goal(f"browser filter round-trip in Chromium, {args.runs:,} runs (kind filter → rows drawn)",
             report["filter_round_trip_s"], "<", 0.2, " s"),
        Goal(f"browser search round-trip in Chromium, {args.runs:,} runs (request → rows drawn; "
             "the 250 ms typing debounce comes before)", report["search_request_to_rows_s"], "<", 0.2, " s"),
    ])


if __name__ == "__main__":
    main()

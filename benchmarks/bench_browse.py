"""Run-browser benchmark: the kernel side of a first render and of a filter round-trip over 100,000 runs.

A trace file gets ``--runs`` synthetic runs (inserted with DuckDB directly, with task and
answer texts of a few hundred characters and a tag on every 100th run). Then, through the
widget's own request handler (what a front-end message runs in the kernel):

* first render: ``RunBrowser(path)`` — filter choices plus the first page — goal < 1 s;
* a page deep in the table (``offset`` = half the runs), sorted by tokens;
* a filter round-trip: kind + status + text search, goal < 200 ms;
* a tag filter.

Each figure is the median of ``--repeats`` runs. The path through JupyterLab and Chromium is
``bench_browser_runs.py``'s.

Usage: ``PYTHONPATH=. python benchmarks/bench_browse.py [--runs 100000] [--repeats 7]``.
Writes ``benchmarks/results/browse.json``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from browser_setup import arguments, print_figures
from report import Goal, write_result

from reflectnb.store import open_store
from reflectnb.widgets.browser import RunBrowser

FILL = "the quick brown fox jumps over the lazy dog " * 6


def make_store(path: Path, runs: int) -> None:
    """``runs`` synthetic runs of four kinds, three models, 10 % failed, every 100th tagged."""
    open_store(path)
    con = duckdb.connect(str(path))
    con.execute("""INSERT INTO runs (run_id, kind, model, params, status, started_at, seconds, completion_tokens,
        task, final_answer) SELECT 'run-' || i, ['reflect', 'debate', 'tree', 'eval:baseline'][i % 4 + 1],
        'model-' || (i % 3), '{"method": "du"}', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'completed' END,
        $start + to_seconds(i), (i % 97) / 10.0, i % 500, 'task number ' || i || ' ' || $fill,
        'answer ' || i || ' ' || $fill FROM range($n) t(i)""",
                {"start": dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "fill": FILL, "n": runs})
    con.execute("INSERT INTO run_tags SELECT 'run-' || i, 'keep', false, now() FROM range(0, $n, 100) t(i)",
                {"n": runs})
    con.close()


@contextmanager
def synthetic_store(runs: int) -> Iterator[Path]:
    """A temporary trace file holding ``runs`` runs of :func:`make_store`; removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "traces.duckdb"
        make_store(path, runs)
        yield path


def median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def request(browser: RunBrowser, query: dict) -> None:
    answer = browser.handle({"type": "page", "id": 1, "query": query})
    if "error" in answer:
        raise RuntimeError(answer["error"])


def main() -> None:
    args = arguments(__doc__, repeats=7, runs=100_000)
    with synthetic_store(args.runs) as path:
        browser = RunBrowser(path)
        assert browser.first_page["total"] == args.runs
        report = {"runs": args.runs, "repeats": args.repeats, "file_mb": path.stat().st_size / 1e6,
                  "first_render_s": median_seconds(lambda: RunBrowser(path), args.repeats),
                  "deep_page_s": median_seconds(lambda: request(browser, {"offset": args.runs // 2, "sort": "tokens"}),
                                                args.repeats),
                  "filter_s": median_seconds(lambda: request(browser, {"kind": "reflect", "status": "completed",
                                                                       "search": "task number 42"}), args.repeats),
                  "tag_filter_s": median_seconds(lambda: request(browser, {"tag": "keep"}), args.repeats)}
    print_figures(report)
    write_result("browse", report, [
        Goal(f"browser first render, {args.runs:,} runs (kernel side)", report["first_render_s"], "<", 1.0, " s"),
        Goal(f"browser filter round-trip, {args.runs:,} runs (kernel side)", report["filter_s"], "<", 0.2, " s"),
    ])


if __name__ == "__main__":
    main()

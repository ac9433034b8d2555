"""Stop-button latency in a real kernel: from the front-end's stop message to the kernel going idle.

The same cell and client as ``tests/test_widgets_kernel.py`` (a scripted reflect loop
streaming 3 x 300 tokens at 10 ms each into a displayed ``LiveView``; the stop
``comm_msg`` is sent when the first streamed state arrives), per stop path:

* ``subshell`` — ipykernel 7 routes the widget's comm to a kernel subshell;
* ``poll`` — ipykernel 6 (``.venv-k6``, made by ``bash scripts/dev.sh setup``, or
  ``REFLECTNB_TEST_IPYKERNEL6_PYTHON``) polls with jupyter-ui-poll between tokens;
* ``off`` — ``REFLECTNB_STOP_MODE=off``: the message waits for the whole run.

Seconds from sending the message to the kernel's idle (saving the run included),
medians of ``--repeats`` runs in one session, and the ratio off / each path.
JSON to ``benchmarks/results/stop.json``.

    python benchmarks/bench_stop.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from report import Goal, write_result  # noqa: E402
from test_widgets_kernel import ipykernel6_python, run_and_press_stop, start_kernel  # noqa: E402


def one_run(python: str, env: dict[str, str]) -> tuple[float, str]:
    """(seconds from the stop message to idle, the cell's output line) for one fresh kernel."""
    with tempfile.TemporaryDirectory() as tmp:
        km, kc = start_kernel(Path(tmp), python, {**env, "REFLECTNB_TRACES": str(Path(tmp) / "traces.duckdb")})
        try:
            out, pressed, idle = run_and_press_stop(kc)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    if pressed is None:
        raise RuntimeError(f"no streamed tokens reached the widget; the cell printed {out!r}")
    return idle - pressed, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    paths = {"subshell": (sys.executable, {}), "poll": (ipykernel6_python(), {}),
             "off": (sys.executable, {"REFLECTNB_STOP_MODE": "off"})}
    runs: dict[str, list[float]] = {name: [] for name in paths}
    outputs: dict[str, list[str]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, (python, env) in paths.items():
            seconds, out = one_run(python, env)
            runs[name].append(seconds)
            outputs[name].append(out)
    med = {name: statistics.median(values) for name, values in runs.items()}
    report = {"median_s": med, "off_over": {n: med["off"] / med[n] for n in ("subshell", "poll")},
              "runs_s": runs, "outputs": outputs, "repeats": args.repeats, "cpu_count": os.cpu_count(),
              "load_average_at_end": os.getloadavg()}
    for name in paths:
        print(f"{name:8s} stop message -> idle: median {med[name] * 1000:.0f} ms "
              f"(runs: {', '.join(f'{s * 1000:.0f}' for s in runs[name])} ms)")
    print(f"off / subshell = {report['off_over']['subshell']:.0f}x; off / poll = {report['off_over']['poll']:.0f}x")
    write_result("stop", report, [Goal(f"stop message → kernel idle ({name})", med[name], "<", 0.5, " s")
                                  for name in ("subshell", "poll")])


if __name__ == "__main__":
    main()

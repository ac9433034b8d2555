"""One shape for every benchmark's result: figures plus the goals they are judged by.

Each ``bench_*.py`` ends with :func:`write_result`, which writes
``benchmarks/results/<name>.json`` holding its figures, the machine it ran on and a
``goals`` list. ``python -m benchmarks`` reads those lists into one table, so a goal
is stated once, next to the code that measures it.
"""

from __future__ import annotations

import json
import math
import operator
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Goal:
    """``figure op target`` — e.g. ``Goal("batch-1 wrapper ÷ plain generate", 0.97, ">=", 0.95)``."""

    name: str
    figure: float | None
    op: str
    target: float
    unit: str = "×"
    note: str = ""

    @property
    def met(self) -> bool | None:
        """None when the figure could not be measured (e.g. an optional engine is not installed)."""
        if self.figure is None or (isinstance(self.figure, float) and math.isnan(self.figure)):
            return None
        return bool(_OPS[self.op](self.figure, self.target))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def write_result(name: str, data: dict[str, Any], goals: list[Goal]) -> Path:
    """Write ``results/<name>.json`` with the figures, the goals and when and where it ran."""
    from machine import machine_summary  # local import: benchmarks run as scripts from this folder

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "load_average_at_end": os.getloadavg(), "machine": machine_summary(),
               "goals": [g.to_dict() for g in goals], **data}
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    for goal in goals:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[goal.met]
        figure = "—" if goal.figure is None else f"{goal.figure:.3g}"
        print(f"  {goal.name}: {figure}{goal.unit} (goal {goal.op} {goal.target:g}{goal.unit}) {verdict}")
    print(f"wrote {out}")
    return out

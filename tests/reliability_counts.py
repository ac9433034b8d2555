"""Write what a reliability test tried and how each try ended, for docs/reliability.md.

A fuzz or crash test calls ``record("magics", tried=200, clear_error=150, ran=50, other=0)``
and the counts merge into ``build/reliability/<area>.json`` (git-ignored), so the table in
docs/reliability.md is generated from a test run instead of typed by hand.

Several tests may feed one area: each names its ``part`` (default ``"all"``). The file keeps
each part's latest counts under ``"parts"`` and, at the top level, the sum over parts, e.g.
``{"tried": 300, "clear_error": 210, "ran": 90, "other": 0, "parts": {...}}``. Rerunning a
test replaces its part instead of adding to it, so the numbers always describe one run.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = Path(os.environ.get("REFLECTNB_RELIABILITY_DIR", ROOT / "build" / "reliability"))


def record(area: str, part: str = "all", **counts) -> Path:
    """Store ``counts`` as ``part`` of ``build/reliability/<area>.json``; return the path.

    Numeric counts are summed over parts into the top level; other values (a note, the
    command that gives a larger budget) are kept per part only. The file is replaced
    atomically so an interrupted run never leaves half a JSON document behind.
    """
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / f"{area}.json"
    # Tests on two xdist workers may feed one area at once: the lock keeps one's part from replacing the other's.
    with open(FOLDER / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _merge(path, part, counts)


def _merge(path: Path, part: str, counts: dict) -> Path:
    try:
        parts = json.loads(path.read_text()).get("parts", {})
    except (OSError, ValueError):
        parts = {}
    parts[part] = dict(counts)
    totals: dict = {}
    for entry in parts.values():
        for key, value in entry.items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**totals, "parts": parts}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path

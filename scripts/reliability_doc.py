"""Write the table of docs/reliability.md from the counts the test run left in build/reliability/.

The fuzz, crash and load tests record what they tried and how each try ended
(``tests/reliability_counts.py``); this script turns those JSON files into the
table between the markers of docs/reliability.md, so the figures in the docs come
from a test run, never from a hand. ``scripts/dev.sh test`` runs it after pytest;
``--check`` exits 1 when the page does not match the counts (without writing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "build" / "reliability"
PAGE = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"


def counts_text(data: dict) -> str:
    return " · ".join(f"{key.replace('_', ' ')} {value:,}" for key, value in sorted(data.items())
                      if isinstance(value, int) and not isinstance(value, bool))


def table(folder: Path = FOLDER) -> str:
    """One row per area (a JSON file), one line per part of that area."""
    rows = ["| area | part | counts |", "|---|---|---|"]
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        rows.append(f"| **{path.stem}** | all | {counts_text(data)} |")
        for part, counts in sorted(data.get("parts", {}).items()):
            if len(data.get("parts", {})) > 1:
                rows.append(f"| | {part} | {counts_text(counts)} |")
    if len(rows) == 2:
        raise SystemExit(f"no counts in {folder}: run the test suite first")
    return "\n".join(rows) + "\n"


def render(page: str, body: str) -> str:
    head, found, rest = page.partition(BEGIN)
    if not found:
        raise SystemExit(f"{PAGE} has no {BEGIN} marker")
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{body}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is out of date; write nothing")
    args = parser.parse_args()
    new = render(PAGE.read_text(), table())
    if args.check:
        return 0 if new == PAGE.read_text() else 1
    PAGE.write_text(new)
    print(f"updated {PAGE.relative_to(ROOT)} from {FOLDER.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

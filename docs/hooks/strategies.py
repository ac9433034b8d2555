"""MkDocs hook: ``reference/strategies.md``, the method reference, made from the strategy registry.

Every registered strategy (built in, or from a plugin's ``reflectnb.strategies``
entry point) gets a section: its summary, the Python call with its options,
the cell magic, the ``%reflect_eval`` method, the live view layout and an
options table (type, default, help), all read from its
:class:`~reflectnb.strategies.spec.Strategy`. A method added with
``reflectnb.register_strategy`` appears here without anyone writing docs.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES_PAGE = "reference/strategies.md"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def strategy_reference_markdown() -> str:
    """The whole method reference page as Markdown."""
    from reflectnb.strategies.spec import strategies

    lines = ["# Method reference", "",
             "Generated when the site is built from the strategy registry (`reflectnb.strategies.spec`), so it "
             "always matches the code. Each method is declared once; its Python function, cell magic, "
             "`%reflect_eval` method and live view all come from that declaration. Add your own with "
             "`reflectnb.register_strategy` ([architecture](../architecture.md)).", ""]
    for spec in strategies().values():
        lines += strategy_section(spec)
    return "\n".join(lines) + "\n"


def strategy_section(spec: Any) -> list[str]:
    """One method: summary, how to call it from each surface, its options."""
    call = ", ".join([spec.task_name, *(f"{f.name}={f.default!r}" for f in spec.fields)])
    lines = [f"## {spec.name}", "", _escape(spec.summary), ""]
    if "api" in spec.surfaces:
        lines.append(f"- Python: `reflectnb.{spec.name}({call})`, plus `model`, `temperature` (default "
                     f"{spec.sampling['temperature']}), `max_tokens` (default {spec.sampling['max_tokens']}), "
                     "`seed`, `schedule`, `trace`, `live`, `max_generations`")
    if "magic" in spec.surfaces:
        lines.append(f"- Cell magic: `%%{spec.name}` ([options](magics.md#{spec.name}))")
    if "eval" in spec.surfaces:
        lines.append(f"- Evaluation method: `%reflect_eval TASKS --methods {spec.name}(option=value, ...)`")
    lines += [f"- Live view layout: `{spec.view}`", ""]
    if spec.fields:
        lines += ["| option | type | default | what it does |", "|---|---|---|---|"]
        lines += [f"| `{f.name}` | {_type(f)} | `{f.default!r}` | {_escape(f.info.help)}"
                  f"{' (one of ' + ', '.join(f'`{c}`' for c in f.info.choices) + ')' if f.info.choices else ''} |"
                  for f in spec.fields]
        lines.append("")
    return lines


def _type(f: Any) -> str:
    if f.info.model:
        return "models" if f.info.many else "model"
    if f.info.variable:
        return "Python object"
    return getattr(f.type, "__name__", "value") + (" or None" if f.optional else "")


def _escape(text: str) -> str:
    return html.escape(text).replace("|", "\\|")


def on_files(files: Files, config: Any) -> Files:
    """Add the generated method reference to the site's files."""
    files.append(File.generated(config, STRATEGIES_PAGE, content=strategy_reference_markdown()))
    return files
